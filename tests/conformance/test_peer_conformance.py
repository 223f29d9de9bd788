"""Turnout against the peer corpus: every case is equivalent in effect, or a documented difference.

See README.md here for how a case is run and compared, and docs/destinations/customerio.md
("Deliberate differences from other routers") for why the listed cases differ.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from peer_harness import (
    DELIBERATE_PATH,
    TALLY,
    canonical,
    differences,
    dropped,
    inputs_of,
    load_cases,
    load_deliberate,
    load_requests,
    replay_peer,
    run_turnout,
    sent_requests,
)

from turnout.emulators.customerio import CustomerIOEmulator

CASES = load_cases()
DELIBERATE = load_deliberate()
TURNOUT_REQUESTS = load_requests()
ERROR_CASES: dict[str, dict[str, str]] = json.loads(DELIBERATE_PATH.read_text())["error_cases"]
DOCS = Path(__file__).parents[2] / "docs" / "destinations" / "customerio.md"
CASE_ID = re.compile(r"\b(?:rs|sg)-\d{3}\b")


def _report(case: dict[str, Any], lines: list[str], **sections: list[str]) -> str:
    out = [f"{case['id']} ({case['call_type']}, {case['origin']})", *lines]
    for title, items in sections.items():
        out.append(f"{title}:")
        out.extend(f"  {item}" for item in items)
    return "\n".join(out)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_peer_case(
    case: dict[str, Any], turnout_side: CustomerIOEmulator, peer_side: CustomerIOEmulator
) -> None:
    case_id = case["id"]
    TALLY[case_id] = "failing"

    # Turnout, in both API modes: the same effect either way.
    turnout_side.reset()
    v2_run = run_turnout(case, turnout_side, "v2")
    v2 = canonical(turnout_side)
    v2_requests = sent_requests(turnout_side, v2_run)
    v2_dropped = dropped(turnout_side)
    turnout_side.reset()
    v1_run = run_turnout(case, turnout_side, "v1")
    v1 = canonical(turnout_side)
    for api, run in (("v2", v2_run), ("v1", v1_run)):
        assert not run.send_failures, _report(
            case,
            [f"Customer.io (the emulator) refused what Turnout sent in {api} mode"],
            failures=run.send_failures,
            outcomes=run.outcomes,
        )
    assert v1 == v2, _report(
        case,
        ["api = 'v1' and api = 'v2' left different states"],
        differences=differences(v1, v2),
    )

    # The peer's requests, replayed.
    peer_side.reset()
    answers = replay_peer(case, peer_side)
    peer = canonical(peer_side)

    found = differences(v2, peer)
    details = {
        "differences (Turnout vs peer)": found,
        "turnout": v2_run.outcomes + [f"not applied: {d}" for d in v2_dropped],
        "peer requests": answers + [f"not applied: {d}" for d in dropped(peer_side)],
    }
    reason = DELIBERATE.get(case_id)
    if reason is None:
        assert not found, _report(
            case,
            [
                "differs from the peer and is not listed in tests/conformance/deliberate.json "
                "(and the docs' 'Deliberate differences from other routers')"
            ],
            **details,
        )
        TALLY[case_id] = "equivalent"
    else:
        assert found, _report(
            case,
            [
                "is listed as a deliberate difference but is now equivalent: remove it from "
                "deliberate.json and the docs",
                f"listed reason: {reason}",
            ],
            **details,
        )
        # Differing from the peer is not enough: Turnout sends exactly the reviewed requests.
        expected = TURNOUT_REQUESTS[case_id]
        assert v2_requests == expected, _report(
            case,
            [
                "Turnout's requests differ from tests/conformance/turnout_requests.json "
                "(after a deliberate change: record_requests.py, then review every changed case)"
            ],
            expected=[json.dumps(r, sort_keys=True) for r in expected],
            sent=[json.dumps(r, sort_keys=True) for r in v2_requests],
        )
        TALLY[case_id] = "deliberate"


ERRORS = [c for c in CASES if "expected_error" in c or "expected_errors" in c]


@pytest.mark.parametrize("case", ERRORS, ids=[c["id"] for c in ERRORS])
def test_peer_error_case_is_decided(case: dict[str, Any], turnout_side: CustomerIOEmulator) -> None:
    """Where a peer refuses a call, Turnout sends nothing or sends what the docs say it does."""
    decision = ERROR_CASES.get(case["id"])
    assert decision is not None, f"{case['id']}: the peer refuses it; decide and document it"
    turnout_side.reset()
    run = run_turnout(case, turnout_side, "v2")
    if "expected_errors" in case:
        refused = [entry["input_index"] for entry in case["expected_errors"]]
    else:
        refused = list(range(len(inputs_of(case))))
    sent = [run.sent[index] for index in refused]
    expected = decision["turnout"] == "sends"
    assert sent == [expected] * len(refused), (
        f"{case['id']}: documented as '{decision['turnout']}' ({decision['why']}), but: "
        f"{run.outcomes}"
    )


def test_every_listed_case_exists() -> None:
    ids = {c["id"] for c in CASES}
    assert len(ids) == len(CASES), "case ids must be unique"
    assert set(DELIBERATE) <= ids
    assert set(TURNOUT_REQUESTS) == set(DELIBERATE), "every listed case has its recorded requests"
    assert set(ERROR_CASES) == {c["id"] for c in ERRORS}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def test_docs_list_the_same_deliberate_differences() -> None:
    """Every group in deliberate.json is one bullet in the docs with exactly the same ids."""
    section = _section(DOCS.read_text(), "## Deliberate differences from other routers")
    differing = _section(section, "### Cases that differ")
    bullets = [line for line in differing.splitlines() if line.startswith("- **")]
    documented = [frozenset(CASE_ID.findall(line.split("**")[1])) for line in bullets]
    groups = json.loads(DELIBERATE_PATH.read_text())["groups"]
    listed = [frozenset(group["ids"]) for group in groups]
    assert sorted(map(sorted, documented)) == sorted(map(sorted, listed))

    refused = _section(section, "### Calls the peers refuse")
    rows = [line for line in refused.splitlines() if line.startswith("| ") and "-" in line]
    decided = {m for row in rows for m in CASE_ID.findall(row.split("|")[1])}
    assert decided == set(ERROR_CASES)
    for row in rows:
        ids = CASE_ID.findall(row.split("|")[1])
        for case_id in ids:
            what = row.split("|")[2].strip().lower()
            assert what.startswith(ERROR_CASES[case_id]["turnout"]), (case_id, row)

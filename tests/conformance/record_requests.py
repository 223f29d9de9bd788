"""Writes turnout_requests.json: the requests Turnout sends (api = "v2") for every case listed in
deliberate.json, which `test_peer_conformance.py` then expects exactly.

    .venv/bin/python tests/conformance/record_requests.py

Run it after a deliberate change to the Customer.io mapping, and read the difference of every
case against docs/destinations/customerio.md before keeping it: the file is the reviewed record of
what Turnout sends where it differs from the peers, so a regenerated file is only as good as that
reading.
"""

from __future__ import annotations

import json

from peer_harness import (
    REQUESTS_PATH,
    load_cases,
    load_deliberate,
    run_turnout,
    sent_requests,
)

from turnout.emulators.customerio import EmulatorConfig, run_emulator


def main() -> None:
    deliberate = load_deliberate()
    recorded: dict[str, list[dict[str, object]]] = {}
    with run_emulator(EmulatorConfig(site_id="site", api_key="key"), port=0) as emulator:
        for case in load_cases():
            if case["id"] not in deliberate:
                continue
            emulator.reset()
            run = run_turnout(case, emulator, "v2")
            if run.send_failures:
                raise SystemExit(f"{case['id']}: the emulator refused: {run.send_failures}")
            recorded[case["id"]] = sent_requests(emulator, run)
    REQUESTS_PATH.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")
    print(f"{len(recorded)} cases written to {REQUESTS_PATH}")


if __name__ == "__main__":
    main()

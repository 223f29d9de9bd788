"""Schema-driven fuzzing of the running tracking API against its own OpenAPI description.

schemathesis generates valid and invalid calls for every route from `/v1/openapi.json` and checks
each answer: never a server error, only documented statuses, bodies matching their schemas,
invalid input refused with a 4xx.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from support import WRITE_KEY, TurnoutProcess, basic, write_config
from turnout.ingest.openapi import tracking_openapi

# Invalid input must be refused with a 4xx; 413 (over a limit) is one of Turnout's refusals.
EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "30"))
REFUSALS = [400, 401, 404, 405, 413, 415]
schema = schemathesis.openapi.from_dict(
    tracking_openapi(),
    config=schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
    ),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnoutProcess]:
    # Nothing is delivered here: the connection points at a port nobody listens on.
    directory: Path = tmp_path_factory.mktemp("schema")
    with TurnoutProcess(write_config(directory, "http://127.0.0.1:9")) as process:
        yield process


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_described(case: schemathesis.Case, server: TurnoutProcess) -> None:
    case.call_and_validate(base_url=server.url, headers=basic(WRITE_KEY))

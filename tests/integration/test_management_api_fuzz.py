"""Schemathesis generates requests from `/api/v1/openapi.json` (valid and invalid ones) against a
running Turnout: no input may make the management API fail with a server error.

Driven through schemathesis' Python API with Hypothesis directly (one strategy per operation),
so the check is exactly "no 5xx" and does not depend on the pytest plugin.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err

from support import ADMIN_TOKEN, TurnoutProcess

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES_PER_OPERATION = 40


def test_no_generated_request_causes_a_server_error(turnout: TurnoutProcess) -> None:
    schema = schemathesis.openapi.from_url(turnout.url + "/api/v1/openapi.json", headers=AUTH)
    failures: list[str] = []
    operations = 0
    calls: list[int] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation the schema does not describe well enough to test
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=turnout.url + "/api/v1", headers=AUTH, timeout=20)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r} {case.query!r}"
                    f" -> {response.status_code} {response.text[:300]}"
                )

        run()
    assert operations >= 20
    assert any(200 <= status < 300 for status in calls)  # it reached past validation too
    assert not failures, "\n".join(failures[:20])
    assert "Traceback" not in turnout.output.read_text()

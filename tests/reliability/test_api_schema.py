"""Schemathesis against the API's OpenAPI schema, sent to a live API process on a seeded database: generated
requests (valid and invalid) to every operation, with the admin key so operator and key routes run too. No 5xx,
every response conforms to the schema (body, status code, content type, headers), and the server logs no
traceback. The two streams (SSE, endless) are left out.

Bounded: ``MAX_EXAMPLES`` generated cases per operation and mode (about a minute on the CI machine).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from stadtpuls.api.main import create_app
from stadtpuls.settings import Settings

from .conftest import ADMIN_KEY, LiveApi, table_counts, write_artifact

MAX_EXAMPLES = int(os.environ.get("STADTPULS_RELIABILITY_EXAMPLES", "20"))

# A reliability suite: `make test` runs it, `make test-fast` does not. Its time grows with MAX_EXAMPLES.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(120, 6 * MAX_EXAMPLES))]
CALLS: dict[str, int] = {}
CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
]

_SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/x")).openapi()  # type: ignore[arg-type]
).exclude(path_regex=r"/stream$")
OPERATIONS = {op.ok().label: op.ok() for op in _SCHEMA.get_all_operations()}


def _strategy(operation: Any) -> Any:
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    try:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    except Exception:  # noqa: BLE001 - an operation without anything to break has no negative cases
        pass
    return st.one_of(strategies)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation_answers_within_its_schema_and_never_5xx(label: str, live_api: LiveApi) -> None:
    operation = OPERATIONS[label]

    @given(case=_strategy(operation))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: Any) -> None:
        CALLS[label] = CALLS.get(label, 0) + 1
        case.call_and_validate(base_url=live_api.url, headers={"X-API-Key": ADMIN_KEY}, checks=CHECKS, timeout=30)

    run()
    assert live_api.proc.poll() is None, "the API process died"


def test_the_schema_run_covered_every_operation_and_the_server_logged_no_error(live_api: LiveApi, db_url: str) -> None:
    assert len(OPERATIONS) >= 25
    missing = set(OPERATIONS) - set(CALLS)
    assert not missing, f"operations never called: {sorted(missing)}"
    log = live_api.log()
    assert "Traceback" not in log and "level=error" not in log, log[-4000:]
    assert set(table_counts(db_url)) >= {"sites", "devices", "uplinks"}
    write_artifact(
        "fuzz",
        "schemathesis",
        {"requests": sum(CALLS.values()), "operations": len(CALLS), "max_examples_per_operation": MAX_EXAMPLES},
    )
    print(f"\nschemathesis: {sum(CALLS.values())} requests over {len(CALLS)} operations")

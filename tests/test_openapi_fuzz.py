"""A property-based run over the OpenAPI schema: no 5xx, and every answer as the schema documents it.

Schemathesis generates requests from the schema the API publishes, valid ones and invalid ones (wrong
types, missing fields, odd strings, out-of-range numbers), sends them to a real API process backed by a
real Temporal, and checks each answer: never a server error, a documented status, content type and body.

Bounded and repeatable: a fixed number of examples per operation, derandomized (the same examples every
run, with the pinned schemathesis), no example database.

The run has a stack of its own, with its worker stopped: the endpoints it registers have made-up URLs,
and with no worker no event is ever delivered, so no request leaves this machine (and the session's
stack never sees them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from core.settings import Settings
from tests.conftest import KEYS, OUTPUT, start_stack

EXAMPLES_PER_OPERATION = 60
# The schema the tests are generated from, made in-process at collection (pytest needs the operations
# then); the fixture checks that the running API publishes exactly this one.
SPEC = create_app(Settings()).openapi()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HYPOTHESIS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def schema_of(mode: GenerationMode) -> BaseSchema:
    # /healthz and /metrics take no input, and /healthz is a documented 503 here (no worker polls).
    loaded = schemathesis.openapi.from_dict(SPEC).include(path_regex=r"^/v1/")
    loaded.config.generation.update(modes=[mode])
    return loaded


# Two runs, so that valid requests get their share: invalid ones are easier to make and would crowd them.
valid = schema_of(GenerationMode.POSITIVE)
invalid = schema_of(GenerationMode.NEGATIVE)


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("fuzz-stack")
    stack = start_stack(data_dir, (OUTPUT / "fuzz-stack.log").resolve())
    try:
        stack.stop_worker()
        assert httpx.get(f"{stack.api_url}/openapi.json", timeout=30).json() == SPEC
        yield stack.api_url
    finally:
        stack.stop()


@valid.parametrize()
@HYPOTHESIS
def test_valid_requests_get_no_5xx_and_documented_answers(case: Case[Any], fuzz_api: str) -> None:
    case.call_and_validate(
        base_url=fuzz_api, headers={"x-api-key": KEYS["tenant_a"]}, checks=CHECKS, timeout=30
    )


@invalid.parametrize()
@HYPOTHESIS
def test_invalid_requests_get_no_5xx_and_documented_answers(case: Case[Any], fuzz_api: str) -> None:
    # Made invalid on purpose: a wrong type, a missing field, a string where a number goes. Whether
    # each is refused is not checked: the key is always added (so the removal of the key that
    # schemathesis counts as invalid is undone), and FastAPI rightly ignores unknown query parameters.
    case.call_and_validate(
        base_url=fuzz_api, headers={"x-api-key": KEYS["tenant_a"]}, checks=CHECKS, timeout=30
    )

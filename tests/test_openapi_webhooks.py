"""The OpenAPI document's `webhooks` (OpenAPI 3.1): one entry per event type a receiver can get, its body's
schema the one domain/schemas.py makes, its example the catalog's, and the headers a receiver gets.

Checked with third-party tools: each example is validated against the schema as found in the document
(`jsonschema_rs`, a JSON Schema 2020-12 validator), and schemathesis, which the OpenAPI fuzz run
(tests/test_openapi_fuzz.py) generates its requests with, loads the document and still finds every path
and no webhook among the operations it would call.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from schemathesis.core.result import Ok

from api.main import create_app
from core.settings import Settings
from domain.catalog import EVENT_TYPES, OPERATIONAL_TYPES, SUBSCRIBABLE_BY_NAME
from domain.schemas import SCHEMAS
from service.events import serialize
from service.models import EventSubmission

DOCUMENT = create_app(Settings()).openapi()
WEBHOOKS: dict[str, Any] = DOCUMENT.get("webhooks", {})


def _operation(name: str) -> dict[str, Any]:
    operation: dict[str, Any] = WEBHOOKS[name]["post"]
    return operation


def test_every_catalog_event_type_is_a_webhook() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    assert sorted(WEBHOOKS) == sorted(t.name for t in (*EVENT_TYPES, *OPERATIONAL_TYPES))
    assert len([t for t in EVENT_TYPES if t.name in WEBHOOKS]) == 31
    # Only POST: what every delivery is.
    assert {method for item in WEBHOOKS.values() for method in item} == {"post"}


@pytest.mark.parametrize("name", sorted(SUBSCRIBABLE_BY_NAME))
def test_each_example_validates_against_the_schema_in_the_document(name: str) -> None:
    body = _operation(name)["requestBody"]
    assert body["required"] is True
    content = body["content"]["application/json"]
    # The document's schema is the one GET /v1/webhooks/event-types/{name} serves, not a copy of it.
    assert content["schema"] == SCHEMAS[name]
    validator = jsonschema_rs.Draft202012Validator(content["schema"])
    example = content["example"]
    assert validator.is_valid(example), list(validator.iter_errors(example))
    # The example is the exact body an endpoint receives for the catalog's example.
    _, sent = serialize(EventSubmission(webhook_type=name, object=SUBSCRIBABLE_BY_NAME[name].example))
    assert example == json.loads(sent)
    # And the schema is no rubber stamp: the object without one of its required fields is refused.
    required = content["schema"]["properties"]["data"]["properties"]["object"]["required"]
    if required:
        broken = json.loads(sent)
        del broken["data"]["object"][required[0]]
        assert not validator.is_valid(broken)
    assert not validator.is_valid({**example, "webhook_type": "not.this"})


def test_the_headers_a_receiver_gets_are_documented() -> None:
    for name in WEBHOOKS:
        parameters = {p["name"]: p for p in _operation(name)["parameters"]}
        assert {p["in"] for p in parameters.values()} == {"header"}
        assert {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-webhook-signature",
            "x-webhook-signature-algorithm",
            "webhook-sequence",
            "traceparent",
        } <= set(parameters)
        assert parameters["webhook-id"]["required"] and parameters["webhook-timestamp"]["required"]
        # Sent to some endpoints only, so not required: each says when it is sent.
        assert not parameters["webhook-sequence"].get("required")
        assert "ordered" in parameters["webhook-sequence"]["description"]
        assert "hmac" in parameters["webhook-signature"]["description"]
        assert all(p["description"] and p["schema"]["type"] for p in parameters.values())
        responses = _operation(name)["responses"]
        assert {"200", "410", "default"} <= set(responses)
        assert "any 2xx" in responses["200"]["description"]


def test_schemathesis_loads_the_document_and_calls_no_webhook() -> None:
    loaded = schemathesis.openapi.from_dict(DOCUMENT)
    paths = set()
    for result in loaded.get_all_operations():
        assert isinstance(result, Ok), result  # an operation it could not read
        paths.add(result.ok().path)
    assert paths == set(DOCUMENT["paths"])
    assert not paths & set(WEBHOOKS)

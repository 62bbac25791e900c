"""domain/schemas.py: every catalog example conforms to its type's schema, and the checker finds what
does not (WEBHOOKS_VALIDATE_EVENTS=strict)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import Settings
from domain.catalog import SUBSCRIBABLE_BY_NAME
from domain.schemas import DIALECT, SCHEMAS, EventValidation, violations
from service.errors import InvalidInput
from service.events import checked, serialize
from service.models import EventSubmission


@pytest.mark.parametrize("name", sorted(SUBSCRIBABLE_BY_NAME))
def test_every_catalog_example_validates_against_its_schema(name: str) -> None:
    event_type = SUBSCRIBABLE_BY_NAME[name]
    schema = SCHEMAS[name]
    assert schema["$schema"] == DIALECT and schema["title"] == name
    # The whole body an endpoint receives, exactly as the service serializes it.
    _, body = serialize(EventSubmission(webhook_type=name, object=event_type.example))
    assert violations(schema, json.loads(body)) == []


def test_the_checker_names_what_is_wrong() -> None:
    schema = SCHEMAS["invoice.created"]
    example = SUBSCRIBABLE_BY_NAME["invoice.created"].example
    changed: dict[str, Any] = {**example, "amount_due": 100}  # a decimal string in the catalog
    del changed["id"]
    body = {"webhook_type": "invoice.created", "object_type": "invoice", "data": {"object": changed}}
    assert violations(schema, body) == [
        (("data", "object", "id"), "is required"),
        (("data", "object", "amount_due"), "must be of type string, not int"),
    ]
    assert violations(schema, {**body, "webhook_type": "invoice.voided"})[0][0] == ("webhook_type",)
    assert violations({"type": "integer"}, True) != []  # JSON's true is no number


def test_strict_validation_refuses_an_object_off_its_schema() -> None:
    example = dict(SUBSCRIBABLE_BY_NAME["invoice.created"].example)
    checked("invoice.created", example)
    with pytest.raises(InvalidInput) as refused:
        checked("invoice.created", {**example, "amount_due": 100})
    assert refused.value.field == ("data", "object", "amount_due")
    assert "data.object.amount_due must be of type string" in refused.value.message


def test_validation_is_set_for_every_tenant_or_tenant_by_tenant() -> None:
    assert EventValidation.parse("off").strict_for("acme") is False
    assert EventValidation.parse("strict").strict_for("acme") is True
    per_tenant = EventValidation.parse("acme:strict, *:off")
    assert per_tenant.strict_for("acme") and not per_tenant.strict_for("globex")
    # Without `*`, the tenants not named are off.
    assert not EventValidation.parse("acme:strict").strict_for("globex")
    assert EventValidation.parse("acme:off,*:strict").strict_for("globex")
    assert Settings(validate_events="acme:strict").event_validation.strict_for("acme")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("loose", r"'loose' is not tenant:mode; write it like acme:strict,\*:off"),
        ("acme:loose", r"'acme:loose' is not tenant:mode"),
        ("acme strict", r"is not tenant:mode"),
        ("acme:strict,acme:off", "names acme twice"),
    ],
)
def test_a_validation_setting_off_its_form_says_how_to_write_it(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        EventValidation.parse(value)
    with pytest.raises(ValidationError, match="WEBHOOKS_VALIDATE_EVENTS"):
        Settings(validate_events=value)

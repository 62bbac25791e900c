"""The search attributes of our workflows: what visibility lists deliveries by, and operators filter by in
the Temporal Web UI. Never encrypted, so they hold ids, the event type, statuses and times only.

The business object's ids (`WebhookObjectId`: the event's `data.object.id`; `WebhookCustomerId`: the
customer it concerns, domain/catalog.py's `customer_id_of`) are set when an event's workflow and each of
its deliveries start, never upserted: they are the one thing here from the payload, visible to whoever can
list workflows in Temporal (docs/data-protection.md), so only ids of a plain shape are indexed.

`DeliveryWorkflow` upserts the delivery ones once per step; a `RecoveryWorkflow` carries the tenant, the
endpoint and its recovery id from its start; the API's queries (history/visibility.py) read them; `make run`
and `bootstrap` register them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from domain.catalog import customer_id_of

TENANT = SearchAttributeKey.for_keyword("WebhookTenant")
ENDPOINT_ID = SearchAttributeKey.for_keyword("WebhookEndpointId")
EVENT_ID = SearchAttributeKey.for_keyword("WebhookEventId")
EVENT_TYPE = SearchAttributeKey.for_keyword("WebhookEventType")
DELIVERY_STATUS = SearchAttributeKey.for_keyword("WebhookDeliveryStatus")
ATTEMPT_COUNT = SearchAttributeKey.for_int("WebhookAttemptCount")
LAST_STATUS_CODE = SearchAttributeKey.for_int("WebhookLastStatusCode")
LAST_ATTEMPT_AT = SearchAttributeKey.for_datetime("WebhookLastAttemptAt")
NEXT_ATTEMPT_AT = SearchAttributeKey.for_datetime("WebhookNextAttemptAt")
CREATED_AT = SearchAttributeKey.for_datetime("WebhookCreatedAt")
RECOVERY_ID = SearchAttributeKey.for_keyword("WebhookRecoveryId")
OBJECT_ID = SearchAttributeKey.for_keyword("WebhookObjectId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("WebhookCustomerId")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    TENANT,
    ENDPOINT_ID,
    EVENT_ID,
    EVENT_TYPE,
    DELIVERY_STATUS,
    ATTEMPT_COUNT,
    LAST_STATUS_CODE,
    LAST_ATTEMPT_AT,
    NEXT_ATTEMPT_AT,
    CREATED_AT,
    RECOVERY_ID,
    OBJECT_ID,
    CUSTOMER_ID,
)


def of_endpoint(tenant: str, endpoint_id: str, *more: SearchAttributePair[Any]) -> TypedSearchAttributes:
    """The search attributes a workflow that belongs to one endpoint (its ordered lane, an alert mail about
    it, its recovery) starts with: the tenant and the endpoint it is found by, then `more`."""
    return TypedSearchAttributes(
        [SearchAttributePair(TENANT, tenant), SearchAttributePair(ENDPOINT_ID, endpoint_id), *more]
    )


# What a business object's id may be to be indexed, and what a search for one may ask: the ids billing
# systems make (`inv_01JD…`, `cus_7`, `acme-corp-42`, `order:2026/117`), never text (no spaces, quotes or
# `*`, which a search uses for "starts with"). Longer or stranger ids are delivered all the same, but
# cannot be found by this search.
MAX_BUSINESS_ID = 128
BUSINESS_ID = re.compile(rf"[A-Za-z0-9_.:@/+=-]{{1,{MAX_BUSINESS_ID}}}")


def _indexable(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if BUSINESS_ID.fullmatch(text) else None


def business_ids(body: str) -> tuple[str | None, str | None]:
    """The object id and the customer id an event's body is found by (each None when it has none that
    can be indexed). `body` is the JSON every endpoint receives: `{"object_type", "data": {"object"}}`."""
    try:
        parsed = json.loads(body)
        data_object = parsed["data"]["object"]
        object_type = parsed["object_type"]
    except (ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(data_object, dict) or not isinstance(object_type, str):
        return None, None
    return _indexable(data_object.get("id")), _indexable(customer_id_of(object_type, data_object))


def dev_server_flags() -> list[str]:
    """`--search-attribute` arguments for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        kind = key.indexed_value_type.name.title().replace("_", "")  # KEYWORD → Keyword
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def business_id_search(value: str, name: str) -> tuple[str, bool]:
    """A search for a business object's id (`name` is the query parameter, for the message): the id, and
    whether it is a prefix (a trailing `*`: `inv_00*` finds every id starting with `inv_00`). `ValueError`
    saying what to fix when it could find nothing."""
    prefix = value.endswith("*")
    text = value[:-1] if prefix else value
    if not text:
        raise ValueError(f"{name} is empty: give an id such as inv_0042, or the start of one followed by *")
    if len(text) > MAX_BUSINESS_ID:
        raise ValueError(f"{name} is longer than {MAX_BUSINESS_ID} characters: no id that long is indexed")
    if not BUSINESS_ID.fullmatch(text):
        raise ValueError(
            f"{name} may hold letters, digits and _ . : @ / + = - only, with one * at the end for a prefix "
            "(e.g. inv_0042 or inv_00*); ids with other characters are not indexed"
        )
    return text, prefix

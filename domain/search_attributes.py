"""The search attributes of our workflows: what visibility lists deliveries by, and operators filter by in
the Temporal Web UI. Never encrypted, so they hold ids, the event type, statuses and times only.

`DeliveryWorkflow` upserts the delivery ones once per step; a `RecoveryWorkflow` carries the tenant, the
endpoint and its recovery id from its start; the API's queries (history/visibility.py) read them; `make run`
and `bootstrap` register them.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

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
)


def dev_server_flags() -> list[str]:
    """`--search-attribute` arguments for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        kind = key.indexed_value_type.name.title().replace("_", "")  # KEYWORD → Keyword
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags

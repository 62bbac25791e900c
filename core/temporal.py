"""How this service talks to Temporal: one `connect()`, the workflow-id scheme and the search attributes.

The API, the worker and the tests all go through here so they cannot drift apart. Workflow ids:
`event:{tenant}:{event_id}` and `delivery:{tenant}:{event_id}:{endpoint_id}`; a delivery's public id
(also its `webhook-id` header) is `{event_id}:{endpoint_id}`, so an id from one tenant never resolves
under another tenant's key.
"""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.namespace.v1 import NamespaceConfig, UpdateNamespaceInfo
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client, RetryConfig
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

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

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
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
)


def search_attribute_flags() -> list[str]:
    """`--search-attribute` arguments for `temporal server start-dev`."""
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.title().replace("_", "")  # KEYWORD → Keyword
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


async def connect(
    target: str,
    namespace: str = "default",
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    retry_config: RetryConfig | None = None,
) -> Client:
    """The Temporal client every process uses, with the pydantic data converter our models need.

    `runtime` carries the worker's telemetry (its Prometheus endpoint); None is the SDK's default.
    `retry_config` bounds the client's own retries of an unreachable server (the SDK's default: 10 s).
    """
    return await Client.connect(
        target,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        runtime=runtime,
        retry_config=retry_config,
    )


def is_unreachable(err: BaseException) -> bool:
    """True for the errors that mean Temporal could not be reached (lazy clients raise RuntimeError)."""
    if isinstance(err, RPCError):
        return err.status is RPCStatusCode.UNAVAILABLE or is_timeout(err)
    return isinstance(err, RuntimeError) and str(err).startswith("Failed client connect")


def is_timeout(err: BaseException) -> bool:
    """True when a call ran out of time: the client's own `rpc_timeout` arrives as CANCELLED, the
    server's deadline as DEADLINE_EXCEEDED. Either way the call may have been applied."""
    return isinstance(err, RPCError) and err.status in (
        RPCStatusCode.CANCELLED,
        RPCStatusCode.DEADLINE_EXCEEDED,
    )


async def ensure_search_attributes(client: Client) -> None:
    """Register our search attributes on a Temporal that lacks them (idempotent)."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(existing.custom_attributes)
    except RPCError as err:
        if err.status is not RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server
            raise
        known = set()
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )


async def ensure_retention(client: Client, days: int) -> None:
    """Keep closed workflows (the delivery logs) for `days`; the dev server's default is one day."""
    wanted = Duration(seconds=days * 86400)
    desc = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    if desc.config.workflow_execution_retention_ttl == wanted:
        return
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=client.namespace,
            update_info=UpdateNamespaceInfo(),
            config=NamespaceConfig(workflow_execution_retention_ttl=wanted),
        )
    )


def event_workflow_id(tenant: str, event_id: str) -> str:
    return f"event:{tenant}:{event_id}"


def delivery_id(event_id: str, endpoint_id: str) -> str:
    return f"{event_id}:{endpoint_id}"


def split_delivery_id(value: str) -> tuple[str, str] | None:
    """`(event_id, endpoint_id)`, or None for a string that is not a delivery id."""
    event_id, sep, endpoint_id = value.rpartition(":")
    return (event_id, endpoint_id) if sep and event_id and endpoint_id else None


def delivery_workflow_id(tenant: str, delivery: str) -> str:
    return f"delivery:{tenant}:{delivery}"

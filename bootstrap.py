"""`python -m bootstrap`: prepare a Temporal cluster for this service, then exit 0.

Creates the namespace if it is missing, registers our search attributes and sets the retention of the
delivery logs. Idempotent, so docker-compose runs it on every `up` as a one-shot job that the worker and
the API wait for (`service_completed_successfully`). `make run` does the same steps itself against the
dev server. Waits for Temporal to answer up to `--timeout` seconds (a fresh cluster takes a while).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.logs import FIELDS, configure_logging
from core.settings import Settings
from core.temporal import connect, ensure_retention, ensure_search_attributes, exit_before_finalizing
from domain import search_attributes

log = logging.getLogger("webhooks.bootstrap")


async def ensure_namespace(client: Client, retention_days: int) -> bool:
    """Register the client's namespace when it does not exist; True if it was created."""
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
        return False
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=client.namespace,
                description="Flexprice webhooks: event and delivery workflows",
                workflow_execution_retention_period=Duration(seconds=retention_days * 86400),
            )
        )
    except RPCError as refused:
        if refused.status is not RPCStatusCode.ALREADY_EXISTS:  # another bootstrap got there first
            raise
    return True


async def bootstrap(settings: Settings, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    created = False
    client: Client | None = None
    while True:
        try:
            # One client for every try: letting failed ones be collected at interpreter exit can abort
            # the process from the SDK's core threads.
            client = client or await connect(settings, encrypted=False)
            created = await ensure_namespace(client, settings.log_retention_days) or created
            # A new namespace reaches every frontend's cache some seconds after it is registered:
            # until then these calls say NOT_FOUND, and the loop tries again.
            await ensure_search_attributes(client)
            await ensure_retention(client, settings.log_retention_days)
            break
        except Exception as err:
            if time.monotonic() > deadline:
                raise
            log.info("Temporal not ready yet", extra={FIELDS: {"reason": f"{type(err).__name__}: {err}"}})
            await asyncio.sleep(2)
    log.info(
        "Temporal is ready for the service",
        extra={
            FIELDS: {
                "address": settings.temporal_target,
                "namespace": settings.temporal_namespace,
                "namespace_created": created,
                "search_attributes": ",".join(key.name for key in search_attributes.ALL),
                "retention_days": settings.log_retention_days,
            }
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bootstrap",
        description="Prepare a Temporal cluster for this service (namespace, search attributes, retention).",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for Temporal (300)")
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_format)
    code = 0
    try:
        asyncio.run(bootstrap(settings, timeout=args.timeout))
    except Exception as err:
        log.error("gave up preparing Temporal", extra={FIELDS: {"reason": f"{type(err).__name__}: {err}"}})
        code = 1
    # Out without finalizing the interpreter, where the SDK's clients (kept by a traceback's reference
    # cycles) would be collected under the SDK's own threads.
    exit_before_finalizing(code)


if __name__ == "__main__":
    main()

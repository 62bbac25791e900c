"""How this service talks to Temporal: one `connect()` for every process, and the namespace set-up.

The API, the worker and the tests all connect through here so they cannot drift apart: the pydantic data
converter our models need, the payload codec (core/crypto.py), TLS and API keys. Ids are domain/ids.py's,
search attributes domain/search_attributes.py's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.namespace.v1 import NamespaceConfig, UpdateNamespaceInfo
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client, RetryConfig, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from core.crypto import EncryptionCodec
from core.settings import Settings
from core.tracing import temporal_interceptors
from domain import search_attributes


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    namespace: str | None = None,
    encrypted: bool = True,
    retry_config: RetryConfig | None = None,
) -> Client:
    """The Temporal client every process uses: the pydantic data converter our models need, every payload
    encrypted with the settings' keys, and TLS and an API key when Temporal asks for them (a secured
    cluster, Temporal Cloud).

    `runtime` carries the worker's telemetry (its Prometheus endpoint); None is the SDK's default.
    `encrypted=False` is for calls that carry no payload (the namespace, its search attributes), made by
    processes that hold no key.
    `retry_config` bounds the client's own retries of an unreachable server (the SDK's default: 10 s).
    """
    converter = pydantic_data_converter
    if encrypted:
        converter = dataclasses.replace(
            converter,
            payload_codec=EncryptionCodec(
                settings.keyring,
                compress=settings.payload_compression,
                short_metadata=settings.payload_short_metadata,
            ),
        )
    return await Client.connect(
        settings.temporal_target,
        namespace=namespace or settings.temporal_namespace,
        data_converter=converter,
        lazy=lazy,
        runtime=runtime,
        tls=tls_config(settings),
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
        retry_config=retry_config,
        # Tracing's, when this process traces (core/tracing.py); a worker built on the client gets them.
        interceptors=temporal_interceptors(),
    )


def exit_before_finalizing(code: int) -> NoReturn:
    """End a process that has used the Temporal SDK, once its work is done or given up: logs and output
    flushed, then out without the interpreter's finalization.

    The SDK's core runs threads of its own, which can call into a finalizing interpreter and abort it
    ("Fatal Python error: PyGILState_Release: thread state … must be current when releasing",
    temporalio/sdk-python#300): a worker stopped cleanly then exited 134 with that line in its output,
    once in a CI run, and a one-shot job (compose's `temporal-setup`) would fail its deployment so.
    The caller has closed what it opened (a worker's attempts have ended, its spans are exported by
    core/tracing.py); nothing else needs finalizing.
    """
    try:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:  # a closed pipe cannot send it back to finalizing
        os._exit(code)


def run_then_exit(main: Callable[[], object], *, before_leaving: Callable[[], None]) -> NoReturn:
    """Run a process's `main`, then `exit_before_finalizing` with the code it ended with: 0; a
    `SystemExit`'s own (its message first, to stderr, when it is one: a setting refused); 1, with the
    traceback, for anything else. `before_leaving` runs however it ended (the tracer's last spans): a
    traceback keeps the SDK's clients alive in reference cycles, to be collected while the interpreter
    finalizes, so even a crash leaves this way."""
    code = 0
    try:
        main()
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            sys.stderr.write(exit_.code + "\n")
        code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        # A second stop signal, or a failure, while `before_leaving` runs (an export to a collector that
        # does not answer can take its 30 s) must not skip the exit below.
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, signal.SIG_IGN)
        try:
            before_leaving()
        except BaseException:
            traceback.print_exc()
            code = code or 1
    exit_before_finalizing(code)


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS towards Temporal: off, on with the system's CAs, or with our CA and client certificate."""
    if not settings.temporal_uses_tls:
        return False

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path is not None else None

    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca),
        client_cert=read(settings.temporal_tls_cert),
        client_private_key=read(settings.temporal_tls_key),
        domain=settings.temporal_tls_server_name,
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
        for key in search_attributes.ALL
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

"""The worker: runs `EventWorkflow`, `DeliveryWorkflow`, `RecoveryWorkflow`, `LaneWorkflow` and
`AlertMailWorkflow`, the signed-POST activity, the recovery and lane activities and the alert mail's.

Stateless: any number of workers can poll the same task queue. One shared httpx client per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

import httpcore
import httpx
from sqlalchemy.exc import SQLAlchemyError
from temporalio.common import Priority
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.alerts import AlertActivities
from activities.delivery import HEARTBEAT_EVERY, DeliveryActivities
from activities.lanes import LaneActivities
from activities.recovery import RecoveryActivities
from core.egress import guarded_transport
from core.logs import configure_logging
from core.settings import Settings
from core.temporal import connect, run_then_exit
from core.tracing import configure_tracing, shutdown_tracing
from domain import fairness
from domain.fairness import WorkKind
from service.events import Events
from service.listen import Listening
from store.database import EndpointStore, StoreRefused, require_keys
from store.keys import jwt_signer
from store.revision import require_current
from workflows.alert import AlertMailWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.eager import LiveWorkEager
from workflows.event import EventWorkflow
from workflows.lane import LaneWorkflow
from workflows.recovery import RecoveryWorkflow

log = logging.getLogger("webhooks.worker")


# Seconds a connection to a receiver is kept idle for its next POST. A receiver closes one that has been
# idle for its own timeout: 2 s for gunicorn, 5 s for Node, uvicorn and Apache, more for most others.
# A POST sent on it as it closes gets no answer ("Server disconnected without sending a response"),
# and the attempt fails. httpx keeps one 5 s, so a receiver closing at 5 s (or 2) could meet that; under
# the shortest common timeout, with room for the network's latency, the pool lets it go first.
IDLE_CONNECTION_SECONDS = 1.5


def http_client(
    *,
    allow_private_urls: bool,
    egress_proxy: str | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """The client every attempt shares; it owns the destination guard (`core.egress`).

    `network_backend` replaces the guard's backend: for tests, which script DNS and stay on this machine.
    """
    # httpcore's pool slows down with many open connections, so it stays modest; each endpoint's limit
    # of attempts in flight (store/flow.py) keeps one slow endpoint from holding it all.
    # Redirects are never followed.
    limits = httpx.Limits(
        max_connections=64, max_keepalive_connections=32, keepalive_expiry=IDLE_CONNECTION_SECONDS
    )
    if egress_proxy:
        # The proxy resolves and connects, so its own rules guard the destinations (docs/delivery.md).
        transport = httpx.AsyncHTTPTransport(limits=limits, proxy=egress_proxy, trust_env=False)
    elif allow_private_urls:
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    else:
        transport = guarded_transport(limits=limits, network_backend=network_backend)
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


# Seconds, like the SDK's own latencies under durations_as_seconds: from a fast 2xx to the longest
# per-attempt timeout a delivery can have.
ATTEMPT_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120]


def telemetry_runtime(settings: Settings) -> Runtime | None:
    """A runtime whose Prometheus endpoint serves the SDK's metrics and ours (activity.metric_meter())."""
    address = settings.worker_metrics_address
    if address is None:
        return None
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    durations_as_seconds=True,
                    histogram_bucket_overrides={
                        "webhooks_delivery_attempt_duration_seconds": ATTEMPT_DURATION_BUCKETS
                    },
                )
            )
        )
    except ValueError as err:  # the port is taken, most often by a second `make run`
        raise SystemExit(
            f"cannot serve the worker's metrics on {address} ({err}); set WEBHOOKS_WORKER_METRICS_PORT "
            "to a free port, or to 0 to turn them off"
        ) from None


NOTICE_SWEEP_SECONDS = 10  # how often a worker sends the operational events still owed
SCHEMA_CHECK_SECONDS = 1.0  # how long a worker's start waits to check the store's schema


async def send_owed_notices(
    events: Events, store: EndpointStore, stop: asyncio.Event, *, checked: bool
) -> None:
    """Every `NOTICE_SWEEP_SECONDS`, send the operational events still owed (their moment found Temporal
    or the store unreachable, or the process that owed them died); every worker does, and an event's id
    makes a second send of it the same event. Cancelled when the worker stops: what it was sending stays
    owed."""
    while True:
        try:
            if not checked:  # the store was down as the worker started
                checked = await asyncio.to_thread(check_schema, store)
            await events.send_owed(older_than=timedelta(seconds=NOTICE_SWEEP_SECONDS))
        except StoreRefused:  # found once the store came back: this worker must not run on it
            stop.set()  # the worker stops polling, and this is raised again where the sweep is awaited
            raise
        except SQLAlchemyError as err:  # the store down, or refusing: tried again
            # Not "cannot be reached": an error the store answered (a table already there, say) is not one.
            log.warning("operational events not sent yet: the endpoint store failed (%s); trying again", err)
        except Exception:  # a bug: logged, and tried again
            log.exception("sending owed operational events failed")
        await asyncio.sleep(NOTICE_SWEEP_SECONDS)


# How often a worker ends the `webhooks listen` sessions whose CLI went silent: a small part of the
# session timeout, so a killed CLI's attempts fail as "listener gone" soon after it.
LISTEN_SWEEP_SECONDS = 2.0


async def sweep_listen_sessions(listening: Listening) -> None:
    """End silent listen sessions, failing the attempts they held (service/listen.py); every worker does,
    and a session is ended once. Cancelled when the worker stops."""
    while True:
        try:
            await listening.sweep()
        except Exception:  # a bug: logged, and tried again
            log.exception("sweeping listen sessions failed")
        await asyncio.sleep(LISTEN_SWEEP_SECONDS)


def check_schema(store: EndpointStore) -> bool:
    """Whether the store's schema is this version's and the encryption keys open its secrets;
    `StoreRefused` (which says what to do) if not. A store that cannot be read now is no reason not to
    start: a worker polls through a store outage, and its attempts wait it out; it is checked again as
    the worker sweeps (False)."""
    try:
        require_current(store.engine)
        require_keys(store)
    except SQLAlchemyError as err:
        log.warning("the endpoint store's schema is not checked yet: the store cannot be reached (%s)", err)
        return False
    return True


async def run_worker(
    settings: Settings, stop: asyncio.Event, *, network_backend: httpcore.AsyncNetworkBackend | None = None
) -> None:
    store = EndpointStore(settings.sqlalchemy_url, settings.keyring)

    # Bounded: a store that is locked or slow must not hold the worker's polling back (its attempts wait
    # a store outage out on their own); unchecked, the first sweep checks it again.
    def checked_or_refused() -> bool | StoreRefused:  # a SystemExit is not raised across threads
        try:
            return check_schema(store)
        except StoreRefused as refused:
            return refused

    try:
        outcome = await asyncio.wait_for(asyncio.to_thread(checked_or_refused), SCHEMA_CHECK_SECONDS)
    except TimeoutError:
        log.warning("the endpoint store's schema is not checked yet: the store did not answer in time")
        outcome = False
    if isinstance(outcome, StoreRefused):
        raise outcome
    checked = outcome
    runtime = telemetry_runtime(settings)
    client = await connect(settings, runtime=runtime)
    proxy = settings.egress_proxy.get_secret_value() if settings.egress_proxy else None
    http = http_client(
        allow_private_urls=settings.allow_private_urls, egress_proxy=proxy, network_backend=network_backend
    )
    events = Events(client, store, settings)
    try:
        activities = DeliveryActivities(
            http,
            store,
            jwt_signer(settings, store),
            endpoint_concurrency=settings.endpoint_concurrency,
            endpoint_max_rate=settings.endpoint_max_rate,
            disable_after=settings.disable_after_delta,
            # An endpoint's health changes are told through an event like any other.
            tell=events.tell,
            listen_timeout=timedelta(seconds=settings.listen_session_timeout),
            # Attempts read their event's body from its history (docs/delivery.md).
            client=client,
        )

        # A recovery's pages list deliveries and events, and update or start deliveries, through the same
        # client the worker polls with.
        def live(tenant: str) -> Priority:
            return fairness.for_tenant(tenant, WorkKind.LIVE, settings.weights, fair=settings.fairness)

        recoveries = RecoveryActivities(
            client, store, lane_priority=live, lane_max_queued=settings.lane_max_queued
        )
        lanes = LaneActivities(
            store,
            tell=events.tell,
            client=client,
            task_queue=settings.task_queue,
            priority=live,
            max_queued=settings.lane_max_queued,
        )
        # Mails to people about endpoints' health, through the operator's SMTP server (if set).
        alerts = AlertActivities(settings.smtp, sender=settings.alert_from)
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[EventWorkflow, DeliveryWorkflow, RecoveryWorkflow, LaneWorkflow, AlertMailWorkflow],
            activities=[
                activities.deliver_once,
                recoveries.recover_page,
                recoveries.replay_page,
                lanes.lane_blocked,
                lanes.last_sequence,
                lanes.advance_sequence,
                lanes.lane_body,
                lanes.tell_lanes,
                alerts.send_alert_mail,
                lanes.endpoint_exists,
                lanes.close_out,
            ],
            # Every attempt and workflow task shares one event loop: too many at once and the loop lags
            # enough to time out attempts whose receiver answered in time. Sized for a 2-core machine
            # (BENCHMARKS.md); raise them with the cores, or run more workers.
            max_concurrent_activities=settings.worker_max_activities,
            max_concurrent_workflow_tasks=settings.worker_max_workflow_tasks,
            # On SIGTERM (a deploy, a scale-down) let attempts in flight finish and be logged, rather
            # than cancel them and POST the same delivery again later.
            graceful_shutdown_timeout=timedelta(seconds=settings.delivery_timeout + 5),
            # Live attempts are handed back eagerly with the workflow task that schedules them, when this
            # worker has a slot free; every other activity goes through the task queue, where Temporal
            # orders the backlog by priority and each tenant's share (workflows/eager.py says why).
            disable_eager_activity_execution=False,
            interceptors=[LiveWorkEager()],
            # Each heartbeat of an attempt sent as it is made (activities/delivery.py): held back for 80 %
            # of the heartbeat timeout, as the SDK would, a worker frozen for 2 s could lose its try.
            max_heartbeat_throttle_interval=HEARTBEAT_EVERY,
        )
        async with worker:
            log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_target)
            if settings.worker_metrics_address:
                log.info("worker metrics on http://%s/metrics", settings.worker_metrics_address)
            sweeper = asyncio.create_task(send_owed_notices(events, store, stop, checked=checked))
            listen_sweeper = asyncio.create_task(sweep_listen_sessions(Listening(client, store, settings)))
            try:
                await stop.wait()
            finally:  # before the worker's own graceful stop, which must not wait for a sweep
                for task in (sweeper, listen_sweeper):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        await http.aclose()
        store.close()


def main(*, network_backend: httpcore.AsyncNetworkBackend | None = None) -> None:
    settings = Settings()
    configure_logging(settings.log_format)
    configure_tracing("webhooks-worker")

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop, network_backend=network_backend)

    # Out without finalizing, whichever way it ends (core/temporal.py), once the last attempts' spans,
    # still buffered, are exported.
    run_then_exit(lambda: asyncio.run(_main()), before_leaving=shutdown_tracing)


if __name__ == "__main__":
    main()

"""Alert mails: when an operational event about an endpoint's health is sent, the mail to a person too.

`Events` calls `mail` for each owed event it has sent (service/events.py): the same outbox, so a change is
mailed even if Temporal or the store could not be reached at its moment, or the process died. Nothing is
started without an SMTP server (WEBHOOKS_SMTP_URL) or without an address to write to (the endpoint's
`alert_emails` and its tenant's WEBHOOKS_TENANT_ALERT_EMAILS): nothing is sent and nothing fails. Otherwise
one `AlertMailWorkflow` on the id the event's id makes (`alert:{tenant}:{event id}`): a second start, by a
sweep or another process, finds it and starts none.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.settings import Settings
from domain import fairness, ids
from domain import search_attributes as sa
from domain.alerts import MAILED, AlertMailInput, shown_url, unique
from domain.fairness import WorkKind
from domain.listen import LISTEN_URL
from service.boundary import in_store
from store.database import Endpoint, EndpointStore
from store.health import OwedNotice
from workflows.alert import AlertMailWorkflow

log = logging.getLogger("webhooks.alerts")


def mail_of(notice: OwedNotice, endpoint: Endpoint | None, settings: Settings) -> AlertMailInput | None:
    """The mail owed with `notice` (`endpoint` as it is now, None if deleted since); None if nobody is to
    be written to or it is not a change that is mailed."""
    if notice.transition.value not in MAILED or settings.smtp is None:
        return None
    if endpoint is not None and endpoint.url == LISTEN_URL:
        return None  # a developer's `webhooks listen` session: their terminal says it, nobody's inbox
    recipients = unique(
        [*(endpoint.alert_emails if endpoint else []), *settings.alert_emails.get(notice.tenant, [])]
    )
    if not recipients:
        return None
    about = dict(notice.object)
    url = shown_url(endpoint.url) if endpoint else None
    if endpoint and url and isinstance(about.get("last_error"), str):
        # An error that quotes the URL would quote its query string, which may hold a token.
        about["last_error"] = about["last_error"].replace(endpoint.url, url)
    public = settings.public_api_url
    return AlertMailInput(
        tenant=notice.tenant,
        endpoint_id=notice.endpoint_id,
        notice_id=notice.id,
        transition=notice.transition.value,
        at=notice.at,
        recipients=recipients,
        description=endpoint.description if endpoint else str(about.get("description") or ""),
        url=url,
        about=about,
        dashboard_url=f"{public}/dashboard/#/webhooks/{notice.endpoint_id}" if public and endpoint else None,
    )


class Alerts:
    def __init__(self, client: Client, store: EndpointStore, settings: Settings) -> None:
        self._client = client
        self._store = store
        self._settings = settings
        self._rpc = timedelta(seconds=settings.temporal_rpc_timeout)

    async def mail(self, notice: OwedNotice) -> None:
        """Start the mail `notice` owes, if any; raises Temporal's and the store's errors (the notice then
        stays owed, and this is done again)."""
        if notice.transition.value not in MAILED or self._settings.smtp is None:
            return  # no read of the store for what is never mailed
        endpoint = await in_store(self._store.get, notice.tenant, notice.endpoint_id)
        mail = mail_of(notice, endpoint, self._settings)
        if mail is None:
            return
        settings = self._settings
        try:
            await self._client.start_workflow(
                AlertMailWorkflow.run,
                mail,
                id=ids.alert_workflow_id(notice.tenant, notice.id),
                task_queue=settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # Ids only: the addresses and the text are in the (encrypted) input.
                search_attributes=sa.of_endpoint(notice.tenant, notice.endpoint_id),
                priority=fairness.for_tenant(
                    notice.tenant, WorkKind.LIVE, settings.weights, fair=settings.fairness
                ),
                rpc_timeout=self._rpc,
            )
        except WorkflowAlreadyStartedError:
            pass  # started by an earlier send of this notice, and closed since: mailed once

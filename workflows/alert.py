"""`AlertMailWorkflow`: one alert mail (domain/alerts.py), sent by one activity under a retry policy.

Started when an operational event about an endpoint's health (failing, recovered, disabled) is sent
(service/alerts.py), on an id derived from that event's id: `alert:{tenant}:{event id}`, refused a second
time, so a state change is mailed once whatever the retries and the sweeps. Durable and visible in the
Web UI: a mail server that refuses for a while (down, 4xx) delays the mail, which is sent when it takes it;
one that refuses every recipient for good (5xx) ends the workflow with the reason, as does a server that
has not taken it for `GIVE_UP_AFTER` (a mail about a change days old helps nobody, and the dashboard says
the endpoint's health anyway). No exception of ours fails the workflow: it completes, saying what happened.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.alerts import PERMANENT, AlertActivities
    from domain.alerts import AlertMailInput, AlertMailResult

# One SMTP conversation: connect, TLS, log in, send; smtplib's own timeout bounds each step.
SEND_TIMEOUT = timedelta(seconds=60)
GIVE_UP_AFTER = timedelta(days=2)
# A mail server that is down or answers 4xx: again soon, then every 5 minutes.
SMTP_REFUSED = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
    non_retryable_error_types=[PERMANENT],
)


@workflow.defn
class AlertMailWorkflow:
    @workflow.run
    async def run(self, input: AlertMailInput) -> AlertMailResult:
        try:
            return await workflow.execute_activity_method(
                AlertActivities.send_alert_mail,
                input,
                start_to_close_timeout=SEND_TIMEOUT,
                schedule_to_close_timeout=GIVE_UP_AFTER,
                retry_policy=SMTP_REFUSED,
            )
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            workflow.logger.warning("alert mail %s not sent: %s", input.notice_id, reason)
            return AlertMailResult(sent=False, reason=reason)

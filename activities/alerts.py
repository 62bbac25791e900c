"""`send_alert_mail`: one alert mail (domain/alerts.py) through the operator's SMTP server, with smtplib.

The server is WEBHOOKS_SMTP_URL (core/settings.py): `smtps://` speaks TLS from the start; `smtp://` uses
STARTTLS whenever the server offers it, and will not send a password without it. Certificates are checked
against the system's CAs. What a server refuses for a while (not reachable, a 4xx, a login refused, which
an operator can fix) raises a retryable error, and the workflow's retry policy sends it later; recipients
that are all refused for good (5xx) raise `PERMANENT`, which is not retried. The mail is composed here, at
each try, from what the workflow was given: never a secret or a payload (domain/alerts.py).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.settings import SmtpServer
from domain.alerts import AlertMailInput, AlertMailResult, compose

PERMANENT = "AlertMailRefused"  # the type of the error the workflow does not retry
RETRYABLE = "AlertMailNotSentYet"
SMTP_TIMEOUT = 30.0  # seconds, for each step of the conversation (smtplib's socket timeout)

log = logging.getLogger("webhooks.alerts")


def _answer(code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(said.split())}"


def send(
    server: SmtpServer, message: EmailMessage, *, sender: str, recipients: list[str]
) -> dict[str, tuple[int, bytes]]:
    """One SMTP conversation: the recipients the server refused (the others took the mail); raises what
    smtplib raises."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if server.implicit_tls:
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT)
    with smtp:
        smtp.ehlo()
        if not server.implicit_tls and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        elif not server.implicit_tls and server.username:
            raise smtplib.SMTPNotSupportedError(
                "the mail server does not offer STARTTLS, and the password of WEBHOOKS_SMTP_URL is never "
                "sent in the clear: turn STARTTLS on there, or use smtps://"
            )
        if server.username:
            smtp.login(server.username, server.password or "")
        return smtp.send_message(message, from_addr=sender, to_addrs=recipients)


class AlertActivities:
    """Holds where mail goes (None: nowhere) and who it is from; built in worker.py."""

    def __init__(self, server: SmtpServer | None, *, sender: str | None) -> None:
        self._server = server
        self._sender = sender

    @activity.defn
    async def send_alert_mail(self, mail: AlertMailInput) -> AlertMailResult:
        if self._server is None or self._sender is None:
            # Started by a process that has the setting, run by one that has not: nothing is sent.
            log.warning("alert mail %s not sent: WEBHOOKS_SMTP_URL is not set on this worker", mail.notice_id)
            return AlertMailResult(sent=False, reason="WEBHOOKS_SMTP_URL is not set on the worker")
        message = compose(mail, sender=self._sender, now=datetime.now(UTC))
        where = f"{self._server.host}:{self._server.port}"
        try:
            refused = await asyncio.to_thread(
                send, self._server, message, sender=self._sender, recipients=mail.recipients
            )
        except smtplib.SMTPRecipientsRefused as err:
            # Counts and codes only: a failure's message is kept in Temporal's history unencrypted, and an
            # SMTP server's answer about a recipient often repeats the address.
            codes = ", ".join(str(code) for code in sorted({code for code, _ in err.recipients.values()}))
            refused_all = f"{where} refused every one of {len(err.recipients)} recipients (SMTP {codes})"
            if all(code >= 500 for code, _ in err.recipients.values()):
                raise ApplicationError(refused_all, type=PERMANENT, non_retryable=True) from None
            raise ApplicationError(f"{refused_all}, for now", type=RETRYABLE) from None
        except smtplib.SMTPDataError as err:
            permanent = err.smtp_code >= 500
            raise ApplicationError(
                f"{where} refused the mail: {_answer(err.smtp_code, err.smtp_error)}",
                type=PERMANENT if permanent else RETRYABLE,
                non_retryable=permanent,
            ) from None
        except smtplib.SMTPResponseException as err:  # sender or login refused: the operator's to fix
            raise ApplicationError(
                f"{where} answered {_answer(err.smtp_code, err.smtp_error)}", type=RETRYABLE
            ) from None
        except (smtplib.SMTPException, OSError) as err:  # not reachable, TLS, disconnected, timed out
            raise ApplicationError(
                f"{where} did not take the mail: {type(err).__name__}: {err}".rstrip(": "), type=RETRYABLE
            ) from None
        taken = [address for address in mail.recipients if address not in refused]
        log.info(
            "alert mail %s (%s of endpoint %s) sent to %d recipients",
            mail.notice_id,
            mail.transition,
            mail.endpoint_id,
            len(taken),
        )
        return AlertMailResult(
            sent=True,
            recipients=taken,
            refused={address: _answer(code, text) for address, (code, text) in refused.items()},
        )

"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records every mail it takes, and can be stopped and
started again on the same port (a mail server down for a while)."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from launcher import free_port


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())


class SmtpServer:
    def __init__(
        self,
        *,
        refuse_recipients: str | None = None,
        starttls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        """`refuse_recipients`: the answer to every RCPT (`550 …`), instead of taking them. `starttls`: offer
        STARTTLS with this context, and require it. `login`: require AUTH with this user and password
        (after STARTTLS)."""
        self.port = free_port()
        self._refusal = refuse_recipients
        self._starttls = starttls
        self._login = login
        self.logins: list[str] = []  # the users that logged in
        self._mails: list[Mail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self._refusal is not None:
            return self._refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and self._login == (
            data.login.decode(),
            data.password.decode(),
        )
        if good:
            with self._lock:
                self.logins.append(data.login.decode())
        return AuthResult(success=good)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self._starttls is not None:
            options.update(tls_context=self._starttls, require_starttls=True)
        if self._login is not None:
            options.update(auth_required=True, auth_require_tls=True, authenticator=self._authenticate)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        """Started for the `with` block, stopped at its end (a test may stop and start it in between)."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

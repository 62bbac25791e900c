"""Alert mails, unit by unit: the addresses accepted, the settings, the mail's text, who gets it, and the
activity's SMTP conversation against a real SMTP server (aiosmtpd on 127.0.0.1). The end-to-end run
through the API, the worker and Temporal is tests/test_alert_mail_e2e.py."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.alerts import PERMANENT, RETRYABLE, AlertActivities
from core.settings import Settings, SmtpServer, parse_smtp_url
from domain.alerts import (
    MAX_ALERT_EMAILS,
    AlertMailInput,
    check_alert_emails,
    compose,
    parse_tenant_alert_emails,
)
from domain.models import SignatureMethod
from service.alerts import mail_of
from store.database import Endpoint, EndpointStore
from store.health import OwedNotice, Transition
from store.tables import EndpointRow
from tests.conftest import add_endpoint
from tests.smtp_server import SmtpServer as LocalSmtp
from tests.tls import make_ca

AT = datetime(2026, 12, 5, 22, 41, 7, tzinfo=UTC)


# The addresses


def test_plain_addresses_are_kept_in_order_each_once_whatever_its_case() -> None:
    given = ["ops@acme.com", " CFO+alerts@Mail.Acme.co.uk ", "OPS@ACME.COM", "o'neil@acme-corp.io"]
    assert check_alert_emails(given) == ["ops@acme.com", "CFO+alerts@Mail.Acme.co.uk", "o'neil@acme-corp.io"]
    assert check_alert_emails([]) == []


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("ops at acme.com", "is not an e-mail address; write it like ops@acme.com"),
        ("Ops <ops@acme.com>", "is not an e-mail address"),
        ("ops@acme.com\r\nBcc: everyone@evil.example", "is not an e-mail address"),
        ("ops@acme.com, cfo@acme.com", "is not an e-mail address"),
        ("ops@localhost", "is not an e-mail address"),
        ("ops@acme..com", "is not an e-mail address"),
        (".ops@acme.com", "is not an e-mail address"),
        ("ops@-acme.com", "is not an e-mail address"),
        ("ops@10.0.0.1", "is not an e-mail address"),
        ("ops|cfo@acme.com", "is not an e-mail address"),
        ("opé@acme.com", "has characters beyond ASCII"),
        ("", "is not an e-mail address"),
    ],
)
def test_anything_but_a_plain_address_is_refused_saying_which_and_how_to_write_it(
    address: str, said: str
) -> None:
    with pytest.raises(ValueError, match=said) as refused:
        check_alert_emails(["ok@acme.com", address])
    assert str(refused.value).startswith("alert_emails[1]: ")


def test_more_than_ten_addresses_are_refused() -> None:
    many = [f"ops{i}@acme.com" for i in range(MAX_ALERT_EMAILS + 1)]
    with pytest.raises(ValueError, match=f"at most {MAX_ALERT_EMAILS}"):
        check_alert_emails(many)
    assert len(check_alert_emails(many[:-1])) == MAX_ALERT_EMAILS


def test_the_tenant_setting_is_tenant_colon_addresses_separated_by_bars() -> None:
    parsed = parse_tenant_alert_emails(" acme:ops@acme.com| cfo@acme.com ,globex:noc@globex.io,")
    assert parsed == {"acme": ["ops@acme.com", "cfo@acme.com"], "globex": ["noc@globex.io"]}
    assert parse_tenant_alert_emails("") == {}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("ops@acme.com", "is not tenant:address; write it like acme:ops@acme.com"),
        ("*:noc@flexprice.io", "no \\* : each tenant's alerts go to its own people"),
        ("acme:", "is not tenant:address"),
        ("acme:ops@acme", r"WEBHOOKS_TENANT_ALERT_EMAILS \(acme\): 'ops@acme' is not an e-mail address"),
        ("acme:a@acme.com,acme:b@acme.com", "names acme twice"),
    ],
)
def test_a_wrong_tenant_setting_is_refused_saying_what_to_fix(value: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_tenant_alert_emails(value)
    with pytest.raises(ValidationError, match=said):
        Settings(tenant_alert_emails=value)


# The SMTP settings


def test_the_smtp_url_names_the_server_its_tls_and_its_login() -> None:
    assert parse_smtp_url("smtp://mail.example.com") == SmtpServer("mail.example.com", 587, False)
    server = parse_smtp_url("smtps://alerts%40acme.com:p%40ss:word@mail.example.com:2465")
    assert (server.host, server.port, server.implicit_tls) == ("mail.example.com", 2465, True)
    assert (server.username, server.password) == ("alerts@acme.com", "p@ss:word")
    assert "p@ss" not in repr(server)  # a log of the settings never shows it


@pytest.mark.parametrize(
    "value", ["http://user:hunter2@mail.example.com", "smtp://user:hunter2@", "smtp://user:hunter2@h/x?y=1"]
)
def test_a_wrong_smtp_url_is_refused_without_quoting_its_password(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(smtp_url=SecretStr(value), alert_from="alerts@acme.com")
    assert "smtp://user:password@mail.example.com:587" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_an_smtp_server_needs_a_sender_and_none_is_none() -> None:
    with pytest.raises(ValidationError, match="set it to the address alert mails come from"):
        Settings(smtp_url=SecretStr("smtp://mail.example.com"))
    with pytest.raises(ValidationError, match="WEBHOOKS_ALERT_FROM: 'alerts' is not an e-mail address"):
        Settings(smtp_url=SecretStr("smtp://mail.example.com"), alert_from="alerts")
    assert Settings(smtp_url=SecretStr("")).smtp is None  # set but empty, as compose files leave it


# The mail


def _mail(**changes: Any) -> AlertMailInput:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "endpoint_id": "ep_0123",
        "notice_id": "opv_ep_0123_failing_1796510467000",
        "transition": "failing",
        "at": AT,
        "recipients": ["ops@acme.com", "cfo@acme.com"],
        "description": "Billing sync",
        "url": "https://hooks.acme.com/flexprice",
        "about": {
            "id": "ep_0123",
            "failing_since": "2026-12-05T22:41:07Z",
            "consecutive_failures": 3,
            "last_error": None,
            "last_status_code": 500,
            "disabled": None,
        },
        "dashboard_url": "https://webhooks.example.com/dashboard/#/webhooks/ep_0123",
    }
    return AlertMailInput(**{**fields, **changes})


def test_a_failing_mail_says_which_endpoint_what_changed_when_in_utc_and_the_last_answer() -> None:
    message = compose(_mail(), sender="alerts@flexprice.io", now=AT)
    assert message["Subject"] == "Webhook endpoint failing: Billing sync"
    assert (message["From"], message["To"]) == ("alerts@flexprice.io", "ops@acme.com, cfo@acme.com")
    assert message["Message-ID"] == "<opv_ep_0123_failing_1796510467000.acme@flexprice-webhooks.invalid>"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_content()
    assert text.startswith(
        "Your webhook endpoint Billing sync started failing: 3 attempts in a row have failed, since "
        "2026-12-05 22:41:07 UTC."
    )
    for line in (
        "Endpoint         ep_0123",
        "Description      Billing sync",
        "URL              https://hooks.acme.com/flexprice",
        "When             2026-12-05 22:41:07 UTC",
        "Last status      HTTP 500",
        "Failed in a row  3",
        "Open it in the dashboard: https://webhooks.example.com/dashboard/#/webhooks/ep_0123",
    ):
        assert line in text.splitlines()


def test_recovered_and_disabled_mails_say_so() -> None:
    recovered = compose(
        _mail(
            transition="recovered",
            about={
                "failing_since": "2026-12-05T20:00:00Z",
                "consecutive_failures": 0,
                "last_status_code": 204,
            },
            dashboard_url=None,
        ),
        sender="alerts@flexprice.io",
        now=AT,
    )
    assert recovered["Subject"] == "Webhook endpoint recovered: Billing sync"
    assert "recovered: an attempt succeeded at 2026-12-05 22:41:07 UTC, after failing since 2026-12-05 " in (
        recovered.get_content()
    )
    assert "HTTP 204" in recovered.get_content() and "dashboard" not in recovered.get_content()
    disabled = compose(
        _mail(
            transition="disabled",
            about={
                "consecutive_failures": 40,
                "last_status_code": None,
                "last_error": "ConnectError: [Errno 111] Connection refused",
                "disabled": {"by": "rule", "reason": "every attempt failed for 5 days or more", "at": "x"},
            },
        ),
        sender="alerts@flexprice.io",
        now=AT,
    )
    text = disabled.get_content()
    assert "was disabled by the service at 2026-12-05 22:41:07 UTC (every attempt failed for 5 days" in text
    assert "Last status      no HTTP answer" in text
    assert "Last error       ConnectError: [Errno 111] Connection refused" in text


def test_a_description_cannot_add_a_header_or_a_line_to_the_subject() -> None:
    message = compose(
        _mail(description="Sync\r\nBcc: everyone@evil.example\n" + "x" * 200), sender="a@b.io", now=AT
    )
    assert message["Bcc"] is None
    assert message["Subject"].startswith("Webhook endpoint failing: Sync Bcc: everyone@evil.example x")
    assert len(message["Subject"]) < 120
    again = email.message_from_string(message.as_string(), policy=email.policy.default)
    assert again["Bcc"] is None and "\n" not in again["Subject"]


def _endpoint(**changes: Any) -> Endpoint:
    fields: dict[str, Any] = {
        "id": "ep_0123",
        "tenant": "acme",
        "url": "https://hooks.acme.com/flexprice?token=s3cr3t#frag",
        "description": "Billing sync",
        "signature_method": SignatureMethod.HMAC,
        "secret": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vj",
        "event_types": None,
        "enabled": True,
        "created_at": AT,
        "updated_at": AT,
        "headers": {"Authorization": "Bearer hunter2"},
        "alert_emails": ["ops@acme.com", "Shared@Acme.com"],
    }
    return Endpoint(**{**fields, **changes})


def _notice(transition: Transition = Transition.FAILING, **about: Any) -> OwedNotice:
    return OwedNotice(
        id=f"opv_ep_0123_{transition.value}_1",
        tenant="acme",
        endpoint_id="ep_0123",
        transition=transition,
        at=AT,
        object={"id": "ep_0123", "description": "Billing sync", "last_status_code": 500, **about},
    )


def _settings(**fields: Any) -> Settings:
    defaults: dict[str, Any] = {
        "smtp_url": SecretStr("smtp://user:pw@mail.example.com"),
        "alert_from": "alerts@flexprice.io",
        "tenant_alert_emails": "acme:shared@acme.com|cfo@acme.com,globex:noc@globex.io",
    }
    return Settings(**{**defaults, **fields})


def test_the_mail_goes_to_the_endpoint_s_and_the_tenant_s_addresses_each_once() -> None:
    error = "InvalidURL: https://hooks.acme.com/flexprice?token=s3cr3t#frag is not valid"
    mail = mail_of(
        _notice(last_error=error), _endpoint(), _settings(public_api_url="https://wh.example.com/")
    )
    assert mail is not None
    assert mail.recipients == ["ops@acme.com", "Shared@Acme.com", "cfo@acme.com"]
    assert mail.url == "https://hooks.acme.com/…"
    assert mail.about["last_error"] == "InvalidURL: https://hooks.acme.com/… is not valid"
    assert mail.dashboard_url == "https://wh.example.com/dashboard/#/webhooks/ep_0123"
    everything = mail.model_dump_json() + compose(mail, sender="a@b.io", now=AT).as_string()
    for secret in ("s3cr3t", "hunter2", "whsec_", "Authorization"):
        assert secret not in everything


def test_nothing_is_mailed_without_a_server_an_address_or_a_mailed_change() -> None:
    assert mail_of(_notice(), _endpoint(), Settings(tenant_alert_emails="acme:ops@acme.com")) is None
    assert mail_of(_notice(), _endpoint(alert_emails=[]), _settings(tenant_alert_emails="")) is None
    assert mail_of(_notice(Transition.LANE_BLOCKED), _endpoint(), _settings()) is None
    assert mail_of(_notice(), _endpoint(url="listen://webhooks-cli"), _settings()) is None
    # Deleted since: the tenant's people are still told, of what the event says.
    mail = mail_of(_notice(Transition.DISABLED), None, _settings())
    assert mail is not None and (mail.recipients, mail.url, mail.dashboard_url) == (
        ["shared@acme.com", "cfo@acme.com"],
        None,
        None,
    )
    assert mail.description == "Billing sync"


# The activity, against a real SMTP server


@pytest.fixture
def smtp() -> Iterator[LocalSmtp]:
    with LocalSmtp() as server:
        yield server


async def test_the_activity_sends_one_mail_to_every_recipient(smtp: LocalSmtp) -> None:
    activities = AlertActivities(parse_smtp_url(smtp.url), sender="alerts@flexprice.io")
    result = await ActivityEnvironment().run(activities.send_alert_mail, _mail())
    assert (result.sent, result.recipients, result.refused) == (True, ["ops@acme.com", "cfo@acme.com"], {})
    [mail] = smtp.mails()
    assert (mail.sender, mail.recipients) == ("alerts@flexprice.io", ["ops@acme.com", "cfo@acme.com"])
    assert mail.message["Subject"] == "Webhook endpoint failing: Billing sync"
    assert "Endpoint         ep_0123" in mail.text


async def test_a_server_that_is_down_is_tried_again_and_one_that_refuses_everyone_is_not(
    smtp: LocalSmtp,
) -> None:
    activities = AlertActivities(parse_smtp_url(smtp.url), sender="alerts@flexprice.io")
    smtp.stop()
    with pytest.raises(ApplicationError) as down:
        await ActivityEnvironment().run(activities.send_alert_mail, _mail())
    assert down.value.type == RETRYABLE and not down.value.non_retryable
    assert "ConnectionRefusedError" in down.value.message

    refusing = LocalSmtp(refuse_recipients="550 5.1.1 no such user")
    refusing.start()
    try:
        activities = AlertActivities(parse_smtp_url(refusing.url), sender="alerts@flexprice.io")
        with pytest.raises(ApplicationError) as refused:
            await ActivityEnvironment().run(activities.send_alert_mail, _mail())
    finally:
        refusing.stop()
    assert refused.value.type == PERMANENT and refused.value.non_retryable
    # Codes and counts only: the failure's message is kept unencrypted, and an answer may name the address.
    assert refused.value.message.endswith("refused every one of 2 recipients (SMTP 550)")
    assert "@" not in refused.value.message


async def test_a_password_is_never_sent_to_a_server_without_starttls(smtp: LocalSmtp) -> None:
    activities = AlertActivities(
        parse_smtp_url(f"smtp://alerts:hunter2@127.0.0.1:{smtp.port}"), sender="alerts@flexprice.io"
    )
    with pytest.raises(ApplicationError, match="does not offer STARTTLS") as refused:
        await ActivityEnvironment().run(activities.send_alert_mail, _mail())
    assert refused.value.type == RETRYABLE  # the operator's to fix; the mail waits for it
    assert smtp.mails() == []


async def test_a_worker_without_an_smtp_server_sends_nothing_and_fails_nothing() -> None:
    result = await ActivityEnvironment().run(AlertActivities(None, sender=None).send_alert_mail, _mail())
    assert (result.sent, result.reason) == (False, "WEBHOOKS_SMTP_URL is not set on the worker")


# Where the addresses are kept


def test_an_endpoint_s_addresses_are_kept_sealed_in_the_store(store: EndpointStore) -> None:
    created = add_endpoint(
        store, "acme", url="https://hooks.acme.com/x", alert_emails=["ops@acme.com", "cfo@acme.com"]
    )
    assert created.alert_emails == ["ops@acme.com", "cfo@acme.com"]

    def stored() -> str | None:
        with store.engine.connect() as conn:
            return conn.execute(select(EndpointRow.alert_emails).where(EndpointRow.id == created.id)).scalar()

    sealed = stored()
    assert sealed is not None and sealed.startswith("enc:") and "acme.com" not in sealed
    found = store.get("acme", created.id)
    assert found is not None and found.alert_emails == ["ops@acme.com", "cfo@acme.com"]
    assert store.unopened_keys() == []
    store.update("acme", created.id, description="kept")
    assert stored() == sealed
    store.update("acme", created.id, alert_emails=[])
    assert stored() is None and store.get("acme", created.id).alert_emails == []  # type: ignore[union-attr]


async def test_starttls_then_login_then_the_mail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conversation a real provider has (port 587): STARTTLS, the certificate checked against the CAs
    the process trusts (here a test CA, by OpenSSL's own SSL_CERT_FILE), then the login, then the mail."""
    ca, server_pem, _client = make_ca(tmp_path, server_name="localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_pem.cert, server_pem.key)
    secured = LocalSmtp(starttls=context, login=("alerts@acme.com", "p@ss:w/rd"))
    secured.start()
    try:
        url = f"smtp://alerts%40acme.com:p%40ss%3Aw%2Frd@localhost:{secured.port}"
        activities = AlertActivities(parse_smtp_url(url), sender="alerts@acme.com")
        # Without the test CA the certificate is refused, before any password is sent: tried again later.
        with pytest.raises(ApplicationError, match="CERTIFICATE_VERIFY_FAILED") as untrusted:
            await ActivityEnvironment().run(activities.send_alert_mail, _mail())
        assert untrusted.value.type == RETRYABLE and secured.logins == []
        monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
        result = await ActivityEnvironment().run(activities.send_alert_mail, _mail())
    finally:
        secured.stop()
    assert result.sent and secured.logins == ["alerts@acme.com"]
    assert [m.recipients for m in secured.mails()] == [["ops@acme.com", "cfo@acme.com"]]

"""The codec endpoint: the Temporal Web UI's way to show operators our encrypted payloads.

Temporal's codec-server protocol: `POST /codec/decode` with `{"payloads": [...]}`
(each `{"metadata": {name: base64}, "data": base64}`), the namespace in `X-Namespace`. Only operators may
use it, with the operator key (`WEBHOOKS_OPERATOR_KEY`; `make run` keeps one in the data dir) either as
`Authorization: Bearer <key>` or as the session cookie that `GET /codec/` signs them in with, which the
Web UI sends when its codec settings include cross-origin credentials. CORS allows the Web UI's origin
only. Nothing here is reachable with a tenant's API key.

There is no `/codec/encode`: a payload it made would be bound to no workflow, and the worker refuses
those (core/crypto.py), so it could only have served someone sending a workflow input of their own
choosing. The Web UI shows payloads with decode alone; operators act on deliveries through the API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import time
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload

from api.deps import ServicesDep
from core.crypto import ENCODING, DecryptionError, EncryptionCodec, NotYetReadable
from core.settings import Settings
from service.errors import RateLimited
from service.limits import DoorLimits

router = APIRouter(prefix="/codec", tags=["operators"], include_in_schema=False)
COOKIE = "webhooks_operator"
SESSION_SECONDS = 8 * 3600
MAX_PAYLOADS = 1000


class PayloadJson(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class Payloads(BaseModel):
    payloads: list[PayloadJson] = Field(max_length=MAX_PAYLOADS)


def _session_value(key: str, expires: int) -> str:
    mac = hmac.new(key.encode(), f"codec-session:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def _session_valid(key: str, value: str) -> bool:
    expires, _, _mac = value.partition(".")
    if not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():  # "²" is a digit
        return False
    return hmac.compare_digest(_session_value(key, int(expires)).encode(), value.encode())


def _is_operator(settings: Settings, request: Request) -> bool:
    key = settings.operator_credential
    if key is None:
        return False
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode()):
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and _session_valid(key, cookie)


def ui_origin(settings: Settings) -> str | None:
    """The Web UI's origin, the only one allowed to call the codec from a browser."""
    if not settings.ui_url:
        return None
    parts = urlsplit(settings.ui_url)
    return f"{parts.scheme}://{parts.netloc}"


def _cors(settings: Settings, request: Request, response: Response) -> Response:
    origin = request.headers.get("origin")
    if origin is not None and origin == ui_origin(settings):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Namespace, Authorization"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Vary"] = "Origin"
    return response


@router.options("/decode")
def preflight(request: Request, services: ServicesDep) -> Response:
    return _cors(services.settings, request, Response(status_code=204))


def _to_payload(item: PayloadJson) -> Payload:
    try:
        return Payload(
            metadata={name: base64.b64decode(value, validate=True) for name, value in item.metadata.items()},
            data=base64.b64decode(item.data, validate=True),
        )
    except binascii.Error:
        raise HTTPException(422, "metadata values and data must be base64") from None


def _to_json(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {name: base64.b64encode(value).decode() for name, value in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


@router.post("/decode")
async def decode(
    body: Payloads,
    request: Request,
    services: ServicesDep,
    x_namespace: Annotated[str | None, Header()] = None,
) -> Response:
    """Decrypt payloads for the Web UI."""
    settings = services.settings
    if not _is_operator(settings, request):
        return _cors(
            settings,
            request,
            JSONResponse({"detail": "the codec is for operators: sign in at /codec/ or send the key"}, 401),
        )
    if x_namespace is not None and x_namespace != settings.temporal_namespace:
        return _cors(
            settings,
            request,
            JSONResponse({"detail": f"this codec serves namespace {settings.temporal_namespace!r}"}, 403),
        )
    codec = EncryptionCodec(settings.keyring)
    decoded = []
    for payload in (_to_payload(p) for p in body.payloads):
        # Shown as it is when it was never encrypted: a tracing header, say (the worker's own codec
        # still refuses such a payload wherever it would be read as input).
        if payload.metadata.get("encoding") != ENCODING:
            decoded.append(payload)
            continue
        try:
            [plain] = await codec.decode([payload])
        except NotYetReadable:
            # Sealed with a key this process is not given yet, or by a later version (a rotation or an
            # upgrade under way): shown as it is, sealed, and the rest of the page decoded beside it.
            decoded.append(payload)
            continue
        except DecryptionError as err:
            raise HTTPException(422, f"cannot decode: {err}") from None
        decoded.append(plain)
    return _cors(settings, request, JSONResponse({"payloads": [_to_json(p) for p in decoded]}))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Operators: payload codec</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>Operators: payload codec</h1>
<p>{message}</p>
<form method="post" action="/codec/session">
<label>Operator key <input name="key" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
<p>Then, in the Temporal Web UI's codec settings, use <code>{endpoint}</code> and turn on
<em>Include cross-origin credentials</em>: payloads show decoded for {hours} hours.</p>
</body></html>"""


# The page is plain HTML with inline styles and a form posting to itself: nothing else may load or frame it.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _page(
    request: Request, message: str, status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    endpoint = str(request.base_url).rstrip("/") + "/codec"
    body = _PAGE.format(
        message=html.escape(message), endpoint=html.escape(endpoint), hours=SESSION_SECONDS // 3600
    )
    return HTMLResponse(body, status, headers={**PAGE_HEADERS, **(headers or {})})


@router.get("/")
def sign_in_page(request: Request, services: ServicesDep) -> HTMLResponse:
    """A form that signs an operator in for the Web UI's codec calls."""
    signed_in = _is_operator(services.settings, request)
    return _page(request, "You are signed in." if signed_in else "Sign in with the operator key.")


@router.post("/session")
async def sign_in(request: Request, services: ServicesDep) -> HTMLResponse:
    """Check the operator key and set the session cookie; tries from one address are bounded."""
    try:
        await DoorLimits(services.store, services.settings).codec_sign_in(
            request.client.host if request.client else "unknown"
        )
    except RateLimited as err:
        return _page(request, err.message, 429, {"Retry-After": str(err.retry_after)})
    key = services.settings.operator_credential
    given = parse_qs((await request.body()).decode(errors="replace")).get("key", [""])[0]
    if key is None or not hmac.compare_digest(given.encode(), key.encode()):
        return _page(request, "That is not the operator key.", 401)
    expires = int(time.time()) + SESSION_SECONDS
    response = _page(request, "You are signed in.")
    response.set_cookie(
        COOKIE,
        _session_value(key, expires),
        max_age=SESSION_SECONDS,
        path="/codec",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response

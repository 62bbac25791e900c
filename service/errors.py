"""Every error the service raises, one tree, translated to HTTP answers in one place (api/errors.py).

    WebhooksError
    ├── InvalidInput        the request says something we cannot do: `field` names what to fix
    │   └── PayloadTooLarge
    ├── Unauthenticated     no valid credential: a missing or wrong key, an expired, revoked or forged
    │                       portal session (the message says which; `challenge` for WWW-Authenticate)
    ├── Forbidden           a valid credential without the scope the operation needs (named)
    ├── NotFound            no such thing for this tenant (another tenant's is the same: not found)
    ├── Conflict            the thing's state refuses it now (a disabled endpoint, a reused event id, ...)
    │   └── LimitReached    a bound of the tenant's is reached (its endpoints, its recoveries running)
    ├── RateLimited         too many requests of one kind for now: `retry_after` seconds, and the quota
    ├── Unavailable         a dependency did not answer; try again (`retry_after` seconds)
    │   ├── TemporalUnavailable    not reached, or only read: nothing was done
    │   ├── MayHaveBeenApplied     no answer in time: the request may have been applied
    │   └── StoreUnavailable       the endpoint store: nothing was changed
    └── UpstreamRefused     Temporal refused a call we thought valid (a bug of ours, or its limits)

Messages are written for the caller: they say what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

RETRY_AFTER_SECONDS = 5


class WebhooksError(Exception):
    # The caller's rate limit, when the request was counted against it before it failed (an emission
    # refused after its token was taken): its answer says it as an accepted one would.
    quota: QuotaPolicy | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(WebhooksError):
    """`field` is where the problem is: a path into the request's `location` (`("object_type",)` of the
    body, `("cursor",)` of the query)."""

    def __init__(
        self,
        message: str,
        *,
        field: Sequence[str | int] = (),
        value: object = None,
        location: Literal["body", "query", "path"] = "body",
    ) -> None:
        super().__init__(message)
        self.field = tuple(field)
        self.value = value
        self.location = location


class PayloadTooLarge(InvalidInput):
    pass


class Unauthenticated(WebhooksError):
    def __init__(self, message: str, *, challenge: str = "ApiKey") -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(WebhooksError):
    pass


class NotFound(WebhooksError):
    pass


class Conflict(WebhooksError):
    pass


class LimitReached(Conflict):
    """A bound of the tenant's is reached (`setting` names it): the message says which and what to do."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """What the IETF httpapi draft's `RateLimit-Policy` and `RateLimit` headers say of one limit: its name,
    `quota` requests per `window` seconds, and what is left of it now."""

    name: str
    quota: int
    window: int
    remaining: int
    reset: int  # seconds until the quota is whole again

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.name}";q={self.quota};w={self.window}',
            "RateLimit": f'"{self.name}";r={self.remaining};t={self.reset}',
        }


class RateLimited(WebhooksError):
    """Too many requests of one kind for now: try again in `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int, quota: QuotaPolicy | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.quota = quota


class Unavailable(WebhooksError):
    retry_after = RETRY_AFTER_SECONDS


class TemporalUnavailable(Unavailable):
    """Nothing was done: Temporal was not reached, or the call only read (a read applies nothing)."""

    def __init__(self, message: str = "Temporal is unavailable; nothing was accepted, try again") -> None:
        super().__init__(message)


class MayHaveBeenApplied(Unavailable):
    pass


class CannotReadYet(Unavailable):
    """Data in Temporal sealed with a key this process lacks, or in a later version's form (a rotation or
    an upgrade under way): kept, and read once this process has the key or the version. What could not be
    read may be Temporal's answer to a change it made (`may_have_been_applied`: a manual retry's)."""

    def __init__(self, *, may_have_been_applied: bool = False) -> None:
        then = (
            "the request may have been applied. Retry it with the same id shortly"
            if may_have_been_applied
            else "nothing is lost; try again shortly"
        )
        super().__init__(
            f"the service cannot read this yet (an encryption key or an upgrade it is being given); {then}"
        )


class StoreUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("the endpoint store is unavailable; nothing was changed, try again")


class UpstreamRefused(WebhooksError):
    pass

"""Who goes first when work queues up: the Temporal priority every workflow and activity is given.

Every tenant, endpoint and kind of work shares one task queue. Left first-in first-out, whoever emits
most decides everyone's latency: one tenant's 1,500-event invoice run kept another's next webhook waiting
110 s. Temporal orders a task queue's backlog with two keys of its own (server 1.29+), which we set on
every workflow start, child and activity:

- **Priority by kind of work** (`priority_key`, 1 first): what someone is waiting for now (an event's
  first attempt, a test event, an operational event, a manual retry of one delivery) goes before
  scheduled retries, which go before bulk work (recover, replay, "retry all"). A replay of thousands of
  events waits behind live traffic, its own tenant's included.
- **Fairness between tenants** (`fairness_key` = the tenant, `fairness_weight` from
  `WEBHOOKS_TENANT_WEIGHTS`): within one priority, Temporal dispatches each tenant's tasks in proportion
  to its weight, first-in first-out within a tenant, whatever the size of each backlog.

The event workflow is started with the tenant's key and weight; children and activities inherit both and
set only their priority, so a weight is the one in force when the event was accepted. Fairness must be
switched on in Temporal (`matching.enableFairness`: `make run` and compose do; Temporal Cloud has a
namespace setting); without it the keys are carried and ignored, and priorities still apply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from temporalio.common import Priority

from domain.models import AttemptTrigger, DeliveryOrigin


class WorkKind(StrEnum):
    LIVE = "live"  # someone is waiting: a first attempt, a test event, a manual retry of one delivery
    RETRY = "retry"  # a scheduled retry
    BULK = "bulk"  # recover, replay, retry all: thousands at once, none of them urgent


PRIORITY_KEYS = {WorkKind.LIVE: 1, WorkKind.RETRY: 3, WorkKind.BULK: 5}
# Temporal clamps a weight to this range; a setting outside it is refused rather than silently changed.
MIN_WEIGHT, MAX_WEIGHT = 0.001, 1000.0
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}|\*")


def of_kind(kind: WorkKind) -> Priority:
    """The priority of one kind of work, inheriting the fairness key and weight of the workflow."""
    return Priority(priority_key=PRIORITY_KEYS[kind])


def attempt_kind(origin: DeliveryOrigin, trigger: AttemptTrigger, *, first: bool, bulk: bool) -> WorkKind:
    """How urgent one attempt of a delivery is.

    `first`: the delivery's first scheduled attempt. `bulk`: a manual retry asked for as part of "retry
    all". A replay's deliveries are bulk work from the first attempt to the last scheduled one.
    """
    if trigger is AttemptTrigger.RECOVER or (trigger is AttemptTrigger.MANUAL and bulk):
        return WorkKind.BULK
    if trigger is AttemptTrigger.MANUAL:
        return WorkKind.LIVE
    if origin is DeliveryOrigin.REPLAY:
        return WorkKind.BULK
    return WorkKind.LIVE if first else WorkKind.RETRY


@dataclass(frozen=True, slots=True)
class TenantWeights:
    """Each tenant's share of dispatch: `WEBHOOKS_TENANT_WEIGHTS=acme:5,*:1` gives acme five times the
    share of any other tenant whose work is queued at the same priority."""

    weights: dict[str, float] = field(default_factory=dict)
    default: float = 1.0

    def of(self, tenant: str) -> float:
        return self.weights.get(tenant, self.default)

    @classmethod
    def parse(cls, value: str) -> TenantWeights:
        weights: dict[str, float] = {}
        default = 1.0
        seen: set[str] = set()
        for entry in filter(None, (e.strip() for e in value.split(","))):
            tenant, sep, number = (part.strip() for part in entry.rpartition(":"))
            try:
                weight = float(number)
            except ValueError:
                weight = math.nan
            if not sep or not _TENANT.fullmatch(tenant) or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
                raise ValueError(
                    f"WEBHOOKS_TENANT_WEIGHTS: {entry!r} is not tenant:weight; write it like acme:5,*:1 "
                    f"(a tenant id or * for every other tenant, and a weight from {MIN_WEIGHT} to "
                    f"{MAX_WEIGHT:g})"
                )
            if tenant in weights or (tenant == "*" and "*" in seen):
                raise ValueError(f"WEBHOOKS_TENANT_WEIGHTS names {tenant} twice; give each tenant one weight")
            seen.add(tenant)
            if tenant == "*":
                default = weight
            else:
                weights[tenant] = weight
        return cls(weights, default)


def for_tenant(tenant: str, kind: WorkKind, weights: TenantWeights, *, fair: bool = True) -> Priority:
    """The priority a workflow of `tenant` is started with; without `fair`, the kind's priority alone."""
    if not fair:
        return of_kind(kind)
    return Priority(priority_key=PRIORITY_KEYS[kind], fairness_key=tenant, fairness_weight=weights.of(tenant))


def with_kind(inherited: Priority, kind: WorkKind, *, tenant: str) -> Priority:
    """`inherited`'s tenant and weight at another priority: for a workflow an activity starts (a replay's
    deliveries), which would otherwise start with none. Without a fairness key inherited (a recovery
    started before fairness was, or with it off), none is given either: the recovery's own choice."""
    if inherited.fairness_key is None:
        return of_kind(kind)
    return Priority(
        priority_key=PRIORITY_KEYS[kind], fairness_key=tenant, fairness_weight=inherited.fairness_weight
    )

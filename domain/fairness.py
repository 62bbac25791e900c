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

from dataclasses import dataclass, field
from enum import StrEnum

from temporalio.common import Priority

from domain.models import AttemptTrigger, DeliveryOrigin
from domain.tenant_pairs import parse_tenant_pairs


class WorkKind(StrEnum):
    LIVE = "live"  # someone is waiting: a first attempt, a test event, a manual retry of one delivery
    RETRY = "retry"  # a scheduled retry
    BULK = "bulk"  # recover, replay, retry all: thousands at once, none of them urgent


PRIORITY_KEYS = {WorkKind.LIVE: 1, WorkKind.RETRY: 3, WorkKind.BULK: 5}
# What Temporal ranks a task of no priority key as: the middle of its default five levels.
UNSET_PRIORITY_KEY = 3
# Temporal clamps a weight to this range; a setting outside it is refused rather than silently changed.
MIN_WEIGHT, MAX_WEIGHT = 0.001, 1000.0


def of_kind(kind: WorkKind) -> Priority:
    """The priority of one kind of work, inheriting the fairness key and weight of the workflow."""
    return Priority(priority_key=PRIORITY_KEYS[kind])


def ranks_after(priority_key: int | None, kind: WorkKind) -> bool:
    """Whether work of `priority_key` (None: given none) is dispatched after `kind`'s: a replayed
    delivery's workflow (bulk work) is, when a manual retry gives it live work to do."""
    return (priority_key or UNSET_PRIORITY_KEY) > PRIORITY_KEYS[kind]


def attempt_kind(
    origin: DeliveryOrigin, trigger: AttemptTrigger, *, first: bool, bulk: bool, ordered: bool = False
) -> WorkKind:
    """How urgent one attempt of a delivery is.

    `first`: the delivery's first scheduled attempt. `bulk`: a manual retry asked for as part of "retry
    all". A replay's deliveries are bulk work from the first attempt to the last scheduled one.
    `ordered`: the delivery is its ordered lane's head, which every later event of its key waits behind,
    live ones included: never bulk (a lane sends one delivery of a key at a time, so it paces a replay
    itself), or the live events behind a replayed or recovered head would wait for all live work first.
    """
    kind = _unordered_kind(origin, trigger, first=first, bulk=bulk)
    return WorkKind.RETRY if ordered and kind is WorkKind.BULK else kind


def _unordered_kind(origin: DeliveryOrigin, trigger: AttemptTrigger, *, first: bool, bulk: bool) -> WorkKind:
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
        weights, default = parse_tenant_pairs(
            value,
            setting="WEBHOOKS_TENANT_WEIGHTS",
            what="weight",
            example="acme:5,*:1",
            values=f"a weight from {MIN_WEIGHT} to {MAX_WEIGHT:g}",
            parse_value=_weight,
        )
        return cls(weights, 1.0 if default is None else default)


def _weight(raw: str) -> float:
    weight = float(raw)  # ValueError for what is no number
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:  # NaN too
        raise ValueError(raw)
    return weight


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

"""Counting one chaos run: what was accepted, lost and duplicated, and why each duplicate happened.

Lost: an event the API accepted (202) whose delivery never reached the receiver, or whose log does not
end `succeeded`. Duplicated: a delivery the receiver got more than once (same `webhook-id`). A duplicate
is explained when the delivery's own log accounts for every receipt: each logged attempt with an HTTP
status is one receipt; beyond those, a receipt can only come from a POST whose answer the sender never
had, which the log shows as either

- an attempt that timed out (or broke) after sending: the receiver took it and answered too late; or
- a try of ours cut off mid-POST (`infra_failures`, "an earlier try did not finish"): a worker killed,
  frozen or cut off from Temporal while its POST was in flight, and Temporal made the attempt again.

A receipt that none of these accounts for is an unexplained duplicate, reported as a finding.

Out of order (an ordered endpoint's rows): within one lane (endpoint, ordering key), a receipt whose
`webhook-sequence` is lower than the highest the receiver had already acknowledged (a repeat of that one
is at-least-once, not disorder), or an event whose first POST came before its predecessor in the lane (the
next lower sequence received) was acknowledged, unless that predecessor was given up on (`failed`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chaos.receiver import Receipt

# activities/delivery.py's messages for tries that may have sent a POST before they were lost.
_MAY_HAVE_POSTED = ("an earlier try did not finish", "an internal error")
_REFUSED = "ConnectError"  # nothing was sent: the receiver refused the connection


@dataclass
class DuplicateReport:
    delivery_id: str
    receipts: int
    reasons: list[str]
    explained: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)  # the log, kept for unexplained ones


def _may_have_posted(infra_error: str | None) -> bool:
    return infra_error is None or infra_error.startswith(_MAY_HAVE_POSTED)


def explain_duplicate(
    delivery_id: str, receipts: list[Receipt], detail: dict[str, Any], attempt_timeout: float
) -> DuplicateReport:
    """Match the receiver's receipts of one delivery against its log (see the module docstring)."""
    attempts: list[dict[str, Any]] = detail.get("attempts", [])
    answered = sum(1 for a in attempts if a["status_code"] is not None)
    extra = len(receipts) - answered
    late = sum(1 for r in receipts if r.held >= attempt_timeout)
    timeouts = [
        _unanswered(a)
        for a in attempts
        if a["status_code"] is None and not str(a["error"]).startswith(_REFUSED)
    ]
    lost_tries: list[str] = []
    for a in attempts:
        failures = int(a.get("infra_failures") or 0)
        if failures and not _may_have_posted(a.get("infra_error")):
            failures -= 1  # the last failed try's reason says it sent nothing; earlier ones may have
        lost_tries += [
            f"attempt {a['attempt']}: a try was cut off mid-POST and made again "
            f"(infra_failures {a['infra_failures']}: {a['infra_error']})"
        ] * failures
    # Late receipts go with timed-out attempts first, the others with lost tries.
    first = min(late, len(timeouts))
    pool = timeouts[:first] + lost_tries + timeouts[first:]
    reasons = pool[: max(0, extra)]
    explained = extra <= len(pool)
    if not explained:
        reasons.append(f"{extra - len(pool)} receipt(s) that the log does not account for")
    return DuplicateReport(
        delivery_id=delivery_id,
        receipts=len(receipts),
        reasons=reasons,
        explained=explained,
        attempts=[] if explained else attempts,
    )


def _unanswered(attempt: dict[str, Any]) -> str:
    error = str(attempt["error"])
    if "timed out" in error:
        return f"attempt {attempt['attempt']} timed out after the receiver took it ({error})"
    return f"attempt {attempt['attempt']} broke after sending ({error})"


def reason_kind(reason: str) -> str:
    """The row-level label of one reason."""
    if "cut off mid-POST" in reason:
        return "a try cut off mid-POST, made again"
    if "timed out" in reason:
        return "the attempt timed out after the receiver took it"
    if "broke after sending" in reason:
        return "the attempt broke after sending"
    return "unexplained"


def summarise_reasons(duplicates: list[DuplicateReport]) -> str:
    counts: Counter[str] = Counter(reason_kind(r) for d in duplicates for r in d.reasons)
    return "; ".join(f"{n} × {kind}" for kind, n in counts.most_common())


def out_of_order(
    lanes: dict[str, list[str]], receipts: dict[str, list[Receipt]], given_up: set[str]
) -> list[str]:
    """Every receipt or event out of order in its lane (see the module docstring), described.

    `lanes`: each lane's delivery ids (its webhook-ids); `given_up`: deliveries whose log says `failed`.
    An acknowledgement counts from the moment its answer began to be written (`answering_at`), the
    earliest the sender can have had it: a POST read before then was sent before it.
    """
    found: list[str] = []
    for lane, delivery_ids in lanes.items():
        got = sorted(
            ((r, d) for d in delivery_ids for r in receipts.get(d, [])), key=lambda pair: pair[0].received_at
        )
        acks = [(r.answering_at, r.sequence or 0) for r, _ in got if r.acknowledged]
        for receipt, delivery_id in got:
            if receipt.sequence is None:
                found.append(f"{lane}: {delivery_id} came without webhook-sequence")
                continue
            highest = max((n for at, n in acks if at < receipt.received_at), default=0)
            if receipt.sequence < highest:
                found.append(
                    f"{lane}: {delivery_id} (sequence {receipt.sequence}) came after sequence {highest} "
                    "was acknowledged"
                )
        first_of: dict[int, str] = {}
        for receipt, delivery_id in got:
            if receipt.sequence is not None:
                first_of.setdefault(receipt.sequence, delivery_id)
        numbers = sorted(first_of)
        for before, after in zip(numbers, numbers[1:], strict=False):
            previous, event = first_of[before], first_of[after]
            if previous in given_up:
                continue
            first_post = min(r.received_at for r in receipts[event])
            acked = [r.answering_at for r in receipts[previous] if r.acknowledged]
            if not acked or first_post < min(acked):
                found.append(
                    f"{lane}: {event} (sequence {after}) was sent before {previous} (sequence {before}) "
                    "was acknowledged"
                )
    return found


def delivered_at(receipts: list[Receipt], attempt_timeout: float) -> float | None:
    """When the receiver first answered this delivery in time, as the sender saw it."""
    times = [r.received_at + r.held for r in receipts if r.held < attempt_timeout]
    return min(times) if times else None

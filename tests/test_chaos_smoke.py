"""`make chaos` in short: a few of its faults, ten events each, each felt, nothing lost, every duplicate
explained, every ledger balanced, nothing out of order on an ordered endpoint.

The faults are real (a worker SIGKILLed once the receiver holds a POST of its, a Temporal dev server
SIGKILLed while the client emits, the API SIGKILLed, a receiver that answers after the attempt timeout,
and a worker SIGKILLed mid-lane on an ordered endpoint), on a stack of the run's own; RELIABILITY.md has
the full run. A row whose fault was not felt (the kill landed between two POSTs, no request met the
outage) is VOID and fails this test: it would pass whatever the service did. Also unit tests of how a
duplicate is matched against its delivery's log, and of what counts as out of order in a lane.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from chaos.accounting import explain_duplicate, out_of_order
from chaos.receiver import ChaosReceiver, Receipt
from chaos.run import Row
from chaos.scenarios import IN_FLIGHT, MET_OUTAGE, SCENARIOS_BY_KEY, Target
from launcher import Stack

pytestmark = [pytest.mark.slow, pytest.mark.stack]

ROOT = Path(__file__).resolve().parent.parent
SHORT_FORM = ["receiver-hang", "api-sigkill", "worker-sigkill", "temporal-sigkill", "ordered-worker-sigkill"]
TIMEOUT = 2.0
LOST_TRY = "an earlier try did not finish (its worker stopped or lost touch with Temporal)"


@pytest.mark.timeout(900)
def test_short_chaos_run_feels_each_fault_loses_nothing_and_explains_every_duplicate(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos.run",
            "--smoke",
            "--only",
            ",".join(SHORT_FORM),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=ROOT,
    )
    output = result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    rows = {row["key"]: row for row in report["rows"]}
    assert list(rows) == SHORT_FORM, output
    for key, row in rows.items():
        assert row["error"] is None, (key, row["error"], output)
        # Felt: each proof its scenario names was seen at least once (in-flight POSTs at the worker's
        # kill, requests that met the API's or Temporal's outage, POSTs answered after the timeout).
        assert row["proof"] and all(row["evidence"][p] >= 1 for p in row["proof"]), (key, row["evidence"])
        assert row["accepted"] == row["events"] == 10, (key, row["notes"])
        assert row["accepted"] == row["delivered"] + row["failed"] + row["pending"], (key, row)
        assert row["unbalanced"] == [] and not row["void"], (key, row["verdict"])
        assert row["lost"] == [], (key, row["lost"])
        unexplained = [d for d in row["duplicates"] if not d["explained"]]
        assert unexplained == [], (key, unexplained)
        # Counted on the ordered endpoint's row only, and nothing out of order in any of its lanes.
        assert row["out_of_order"] == ([] if key.startswith("ordered-") else None), (key, row["out_of_order"])
    assert result.returncode == 0, output
    assert "| fault |" in result.stdout  # the table is printed


def _receipt(held: float = 0.2) -> Receipt:
    return Receipt(webhook_id="evt:ep", received_at=0.0, held=held, status=200, answered=True)


def _attempt(n: int, status: int | None, error: str | None = None, **infra: Any) -> dict[str, Any]:
    return {
        "attempt": n,
        "status_code": status,
        "error": error,
        "infra_failures": infra.get("failures", 0),
        "infra_error": infra.get("reason"),
    }


def test_a_second_post_after_a_lost_try_is_explained() -> None:
    detail = {"attempts": [_attempt(1, 200, failures=1, reason=LOST_TRY)]}
    report = explain_duplicate("evt:ep", [_receipt(), _receipt()], detail, TIMEOUT)
    assert report.explained
    assert "cut off mid-POST" in report.reasons[0]


def test_a_late_answer_to_a_timed_out_attempt_is_explained() -> None:
    detail = {"attempts": [_attempt(1, None, "timed out after 2 s"), _attempt(2, 200)]}
    report = explain_duplicate("evt:ep", [_receipt(held=3.0), _receipt()], detail, TIMEOUT)
    assert report.explained
    assert "timed out" in report.reasons[0]


def test_a_second_post_that_the_log_does_not_account_for_is_not_explained() -> None:
    # One attempt, answered, and no try of ours lost: the receiver cannot have had it twice.
    detail = {"attempts": [_attempt(1, 200)]}
    report = explain_duplicate("evt:ep", [_receipt(), _receipt()], detail, TIMEOUT)
    assert not report.explained
    assert report.attempts == detail["attempts"]


def test_a_refused_connection_or_a_store_outage_sent_nothing() -> None:
    detail = {
        "attempts": [
            _attempt(1, None, "ConnectError: [Errno 111] Connection refused"),
            _attempt(2, 200, failures=1, reason="the endpoint store could not be read"),
        ]
    }
    report = explain_duplicate("evt:ep", [_receipt(), _receipt()], detail, TIMEOUT)
    assert not report.explained


def _row(**fields: Any) -> Row:
    return Row("worker-sigkill", "worker SIGKILLed", 3, 10, proof=[IN_FLIGHT], **fields)


def test_a_row_whose_kill_cut_no_post_is_void_whatever_it_counted() -> None:
    row = _row(evidence={IN_FLIGHT: 0, MET_OUTAGE: 4}, accepted=10, delivered=10)
    assert row.void and not row.ok
    assert row.verdict() == f"**VOID**: not felt ({IN_FLIGHT})"


def test_a_row_whose_ledger_does_not_balance_is_void() -> None:
    # Ten accepted, nine accounted for: the tenth's log could not be read, so nothing can be said.
    row = _row(evidence={IN_FLIGHT: 2}, accepted=10, delivered=8, pending=1, unbalanced=["x: unreadable"])
    assert not row.balanced and row.void
    assert "the ledger does not balance" in row.verdict()


def test_a_felt_balanced_row_fails_on_a_loss_and_passes_without() -> None:
    lost = _row(evidence={IN_FLIGHT: 1}, accepted=10, delivered=9, failed=1, lost=["x: failed"])
    assert lost.balanced and not lost.void and lost.verdict() == "**FAIL**"
    assert _row(evidence={IN_FLIGHT: 1}, accepted=10, delivered=10).verdict() == "ok"


def _sequenced(sequence: int, at: float, *, status: int = 200, answered: bool = True) -> Receipt:
    """A receipt of an ordered endpoint's POST read at `at` and answered 0.2 s later."""
    return Receipt(
        webhook_id="",
        received_at=at,
        held=0.2,
        status=status,
        answered=answered,
        sequence=sequence,
        answering_at=at + 0.2,
    )


def test_a_lane_in_order_with_a_repeat_after_a_lost_try_is_not_out_of_order() -> None:
    receipts = {
        "e1": [_sequenced(1, 0.0), _sequenced(1, 1.0)],
        "e2": [_sequenced(2, 2.0, status=500), _sequenced(2, 3.0)],
    }
    assert out_of_order({"k": ["e1", "e2"]}, receipts, given_up=set()) == []


def test_a_lower_sequence_after_a_higher_one_was_acknowledged_is_out_of_order() -> None:
    receipts = {"e1": [_sequenced(1, 0.0), _sequenced(1, 2.0)], "e2": [_sequenced(2, 1.0)]}
    [found] = out_of_order({"k": ["e1", "e2"]}, receipts, given_up=set())
    assert "sequence 1" in found and "after sequence 2" in found


def test_an_event_sent_before_its_predecessor_was_acknowledged_is_out_of_order() -> None:
    # e2's POST was read while e1's answer had not begun: sent before e1 was acknowledged.
    receipts = {"e1": [_sequenced(1, 0.0)], "e2": [_sequenced(2, 0.1)]}
    [found] = out_of_order({"k": ["e1", "e2"]}, receipts, given_up=set())
    assert "before e1" in found
    # The same, its predecessor given up on (a `skip` lane moves on past a failed head): in order.
    failed = {"e1": [_sequenced(1, 0.0, status=500)], "e2": [_sequenced(2, 1.0)]}
    assert out_of_order({"k": ["e1", "e2"]}, failed, given_up={"e1"}) == []
    # Lanes are counted apart: another key's POST in between is no disorder.
    other = {"e1": [_sequenced(1, 0.0)], "f1": [_sequenced(1, 0.1)], "e2": [_sequenced(2, 1.0)]}
    assert out_of_order({"k": ["e1", "e2"], "j": ["f1"]}, other, given_up=set()) == []


def test_a_receiver_fault_that_no_post_met_lasts_until_one_does() -> None:
    """A CI run on a loaded machine saw no POST in the smoke run's 4 s hang: the row proved nothing."""
    with ChaosReceiver(hang_seconds=0.2) as receiver:
        # A receiver fault acts on the receiver only, for the row's path.
        target = Target(stack=cast(Stack, None), receiver=receiver, path="/late")
        posted: list[float] = []

        def post_later() -> None:
            time.sleep(1.0)
            posted.append(time.monotonic())
            httpx.post(receiver.base_url + "/late", content=b"{}", headers={"webhook-id": "d1"})

        poster = threading.Thread(target=post_later)
        poster.start()
        fault = SCENARIOS_BY_KEY["receiver-hang"].fault
        assert fault is not None
        with fault(target):
            pass  # the fault's duration is over at once, before any POST
        healed = time.monotonic()
        poster.join()
        assert posted and healed >= posted[0]
        [receipt] = _wait_for_receipts(receiver, "d1")
        assert receipt.held >= 0.2  # it met the hang
        assert any(note.startswith("held ") for note in target.notes), target.notes


def _wait_for_receipts(receiver: ChaosReceiver, webhook_id: str) -> list[Receipt]:
    """The receipts of `webhook_id`, once noted (just after the answer is written)."""
    deadline = time.monotonic() + 10
    while not (found := receiver.receipts().get(webhook_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found or []

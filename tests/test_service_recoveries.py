"""service/recoveries.py's rules: the window, the bound, the page size and what is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.models import RecoveryCounts, RecoveryStatus
from service.errors import InvalidInput
from service.recoveries import REPLAY_MARGIN, bounded, left, page_size, window
from tests.conftest import recovery_state

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_a_replay_s_window_stays_an_hour_inside_the_retention() -> None:
    """A replayed delivery reads its event at its first attempt, which waits behind live work: an event at
    the retention's very edge could be deleted by then."""
    inside = NOW - timedelta(days=30) + timedelta(hours=2)
    assert window(inside, None, now=NOW, retention_days=30, margin=REPLAY_MARGIN) == (inside, NOW)
    edge = NOW - timedelta(days=30) + timedelta(minutes=30)
    assert window(edge, None, now=NOW, retention_days=30) == (edge, NOW)  # a recovery's may
    with pytest.raises(InvalidInput, match=r"log retention \(30 days, less 1 h for the events to be read\)"):
        window(edge, None, now=NOW, retention_days=30, margin=REPLAY_MARGIN)


def test_a_window_ends_at_the_latest_now_and_reaches_back_at_most_the_retention() -> None:
    since = NOW - timedelta(days=2)
    assert window(since, None, now=NOW, retention_days=30) == (since, NOW)
    assert window(since, NOW + timedelta(hours=1), now=NOW, retention_days=30) == (since, NOW)
    early = NOW - timedelta(hours=1)
    assert window(since, early, now=NOW, retention_days=30) == (since, early)
    with pytest.raises(InvalidInput, match=r"log retention \(30 days\)") as too_old:
        window(NOW - timedelta(days=31), None, now=NOW, retention_days=30)
    assert too_old.value.field == ("since",)
    with pytest.raises(InvalidInput, match="before until"):
        window(early, early, now=NOW, retention_days=30)
    with pytest.raises(InvalidInput, match="before until"):
        window(NOW + timedelta(minutes=1), None, now=NOW, retention_days=30)


def test_more_candidates_than_one_recovery_takes_is_refused_saying_how_to_narrow_it() -> None:
    bounded(10_000, "events", limit=10_000)
    with pytest.raises(InvalidInput, match="holds 10001 events, more than the 10000") as refused:
        bounded(10_001, "events", limit=10_000)
    assert "narrow it" in refused.value.message


@pytest.mark.parametrize(("rate", "size"), [(10, 10), (0.5, 1), (2.5, 3), (1000, 50)])
def test_a_page_is_a_second_of_deliveries_within_bounds(rate: float, size: int) -> None:
    assert page_size(rate) == size


def test_left_is_what_was_not_dealt_with() -> None:
    state = recovery_state(now=NOW, total=40, counts=RecoveryCounts(done=10, failed=1, expired=4))
    assert left(state) == 25
    assert left(state.model_copy(update={"status": RecoveryStatus.CANCELED})) == 25
    assert left(state.model_copy(update={"status": RecoveryStatus.COMPLETED})) == 0
    assert left(state.model_copy(update={"counts": RecoveryCounts(done=45)})) == 0

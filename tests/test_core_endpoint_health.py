"""The operational events an endpoint's health changes owe (store/health.py): written with the
change, once each, oldest first, saying what the change left, until sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.ids import operational_event_id
from store.database import EndpointStore
from store.health import FAILING_NOTICE_AFTER, EndpointHealth, Transition, owe
from tests.conftest import add_endpoint

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _endpoint(store: EndpointStore, description: str = "") -> str:
    return add_endpoint(store, "t", description=description).id


def _attempt(health: EndpointHealth, endpoint_id: str, status: int, at: datetime) -> list[Transition]:
    return health.record("t", endpoint_id, succeeded=status < 300, status_code=status, error=None, at=at)


def test_each_transition_is_owed_in_the_change_that_makes_it_and_once(store: EndpointStore) -> None:
    health = EndpointHealth(store.engine, disable_after=timedelta(days=5))
    ep = _endpoint(store)
    told = [_attempt(health, ep, 500, T0 + timedelta(seconds=n)) for n in range(FAILING_NOTICE_AFTER + 2)]
    assert [t for ts in told for t in ts] == [Transition.FAILING]  # told once, at the third failure
    recovered_at = T0 + timedelta(minutes=1)
    assert _attempt(health, ep, 200, recovered_at) == [Transition.RECOVERED]
    owed = health.owed(tenant="t", endpoint_id=ep)
    # Named by the transition and the moment it began: a second send of one is the same event.
    assert [(n.transition, n.at, n.id) for n in owed] == [
        (Transition.FAILING, T0, operational_event_id(ep, "failing", T0)),
        (Transition.RECOVERED, recovered_at, operational_event_id(ep, "recovered", recovered_at)),
    ]
    # Each says what the change left: the failing run and its last answer; for the recovery, the run
    # it ended, and the 2xx that ended it.
    failing, recovered = (n.object for n in owed)
    assert (failing["failing_since"], failing["consecutive_failures"], failing["last_status_code"]) == (
        "2026-11-27T09:00:00Z",
        FAILING_NOTICE_AFTER,
        500,
    )
    assert (recovered["failing_since"], recovered["consecutive_failures"], recovered["last_status_code"]) == (
        "2026-11-27T09:00:00Z",
        0,
        200,
    )
    assert health.owed(tenant="t", endpoint_id="ep_other") == []
    # What a worker's sweep sends: owed for a while (the attempt that owed it sends it at once).
    assert health.owed(before=datetime.now(UTC) - timedelta(minutes=1)) == []
    assert len(health.owed(before=datetime.now(UTC) + timedelta(seconds=1))) == 2

    health.sent(owed[0].id, at=recovered_at)
    assert [n.transition for n in health.owed(tenant="t", endpoint_id=ep)] == [Transition.RECOVERED]
    _owe(store, ep, Transition.RECOVERED, recovered_at)  # owed again: still one
    assert len(health.owed(tenant="t", endpoint_id=ep)) == 1


def test_an_endpoint_deleted_while_its_attempt_was_made_owes_nothing(store: EndpointStore) -> None:
    health = EndpointHealth(store.engine, disable_after=timedelta(days=5))
    ep = _endpoint(store)
    assert store.delete("t", ep)
    for n in range(FAILING_NOTICE_AFTER):
        _attempt(health, ep, 500, T0 + timedelta(seconds=n))
    assert health.owed() == []


def test_disabling_by_hand_owes_its_event_in_the_same_change(store: EndpointStore) -> None:
    health = EndpointHealth(store.engine, disable_after=timedelta(days=5))
    ep = _endpoint(store)
    store.update("t", ep, description="renamed")  # no transition, nothing owed
    assert health.owed() == []
    disabled = store.update("t", ep, enabled=False)
    assert disabled is not None and disabled.disabled is not None
    [notice] = health.owed()
    assert (notice.endpoint_id, notice.transition, notice.at) == (
        ep,
        Transition.DISABLED,
        disabled.disabled.at,
    )
    assert notice.object["enabled"] is False and notice.object["disabled"]["by"] == "api"
    assert notice.object["description"] == "renamed"


def test_rows_of_events_sent_over_a_day_before_are_deleted(store: EndpointStore) -> None:
    health = EndpointHealth(store.engine, disable_after=timedelta(days=5))
    first, second = _endpoint(store), _endpoint(store)
    _owe(store, first, Transition.DISABLED, T0)
    _owe(store, second, Transition.DISABLED, T0)
    health.sent(operational_event_id(first, "disabled", T0), at=T0)
    health.sent(operational_event_id(second, "disabled", T0), at=T0 + timedelta(days=2))
    # The first's, sent two days before the second's, is gone: owing it again owes it anew.
    _owe(store, first, Transition.DISABLED, T0)
    _owe(store, second, Transition.DISABLED, T0)
    assert [n.endpoint_id for n in health.owed()] == [first]


def _owe(store: EndpointStore, endpoint_id: str, transition: Transition, at: datetime) -> None:
    with store.engine.begin() as conn:
        owe(conn, "t", endpoint_id, transition, at)

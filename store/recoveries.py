"""The recoveries each tenant has running or starting (`recovery_slots`): the bound on how many run at once
(`WEBHOOKS_RECOVERIES_PER_TENANT`), kept in the store so that requests to several API replicas, or several
at the same moment, are counted one at a time. Temporal's visibility, which lags by up to a second, let
requests within that second pass the bound together.

A slot is taken before the recovery's workflow is started, and given the run's id once it has started. It
is never given back by the recovery: the tenant's next start asks Temporal whether each held slot's run
still runs (service/recoveries.py), and frees those whose run has ended, and those taken a minute ago or
more whose run never started (an API that died, or a start that failed). A slot is freed only as it was
read: one taken again meanwhile, for the same endpoint's next recovery, stays.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from store.tables import RecoverySlotRow


@dataclass(frozen=True, slots=True)
class Slot:
    endpoint_id: str
    reserved_at: float  # unix seconds, when it was taken
    token: str  # new each time it is taken
    run_id: str | None  # its recovery's run, once started


class _OneTooMany(Exception):
    pass


class RecoverySlots:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session = sessionmaker(engine)
        self._dialect = sqlite if engine.dialect.name == "sqlite" else postgresql

    def held(self, tenant: str) -> list[Slot]:
        """The tenant's slots."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    RecoverySlotRow.endpoint_id,
                    RecoverySlotRow.reserved_at,
                    RecoverySlotRow.token,
                    RecoverySlotRow.run_id,
                )
                .where(RecoverySlotRow.tenant == tenant)
                .order_by(RecoverySlotRow.endpoint_id)
            )
            return [Slot(*row) for row in rows]

    def take(self, tenant: str, endpoint_id: str, *, most: int, now: float | None = None) -> Slot | None:
        """The endpoint's slot, taken (or taken again) if the tenant then holds at most `most`; None, and
        nothing changed, if that would be one too many."""
        slot = Slot(endpoint_id, time.time() if now is None else now, secrets.token_hex(16), None)
        try:
            self._take(tenant, slot, most=most)
        except _OneTooMany:  # raised inside the transaction: it is rolled back
            return None
        return slot

    def _take(self, tenant: str, slot: Slot, *, most: int) -> None:
        with self._session.begin() as session:
            if self._engine.dialect.name == "postgresql":
                # Two API replicas taking the tenant's last slot at once: one at a time.
                session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"recoveries:{tenant}"))))
            insert = self._dialect.insert(RecoverySlotRow).values(
                tenant=tenant,
                endpoint_id=slot.endpoint_id,
                reserved_at=slot.reserved_at,
                token=slot.token,
                run_id=None,
            )
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=["tenant", "endpoint_id"],
                    set_={
                        "reserved_at": insert.excluded.reserved_at,
                        "token": insert.excluded.token,
                        "run_id": None,
                    },
                )
            )
            # Written first, then counted: on SQLite the write lock makes the count exact, as the
            # advisory lock does on PostgreSQL.
            count = session.scalar(select(func.count()).where(RecoverySlotRow.tenant == tenant)) or 0
            if count > most:
                raise _OneTooMany()

    def started(self, tenant: str, slot: Slot, run_id: str) -> None:
        """The slot's recovery has started as `run_id` (the slot, if not taken again since)."""
        with self._session.begin() as session:
            session.execute(update(RecoverySlotRow).where(self._as_read(tenant, slot)).values(run_id=run_id))

    def free(self, tenant: str, slots: list[Slot]) -> None:
        """Each of `slots`, as it was read: one taken again since is left alone."""
        if not slots:
            return
        with self._session.begin() as session:
            for slot in slots:
                session.execute(delete(RecoverySlotRow).where(self._as_read(tenant, slot)))

    @staticmethod
    def _as_read(tenant: str, slot: Slot) -> ColumnElement[bool]:
        return and_(
            RecoverySlotRow.tenant == tenant,
            RecoverySlotRow.endpoint_id == slot.endpoint_id,
            RecoverySlotRow.token == slot.token,
        )

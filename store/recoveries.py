"""The recoveries each tenant has running or starting (`recovery_slots`): the bound on how many run at once
(`WEBHOOKS_RECOVERIES_PER_TENANT`), kept in the store so that requests to several API replicas, or several
at the same moment, are counted one at a time. Temporal's visibility, which lags by up to a second, let
requests within that second pass the bound together.

A slot is taken before the recovery's workflow is started and is never given back by it: the next start of
the tenant's asks Temporal whether each held slot's recovery still runs (service/recoveries.py), and frees
those that do not. A recovery that ends, is canceled or terminated, or an API that dies between taking a
slot and starting its workflow, so never keeps a slot for long.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from store.tables import RecoverySlotRow


class _OneTooMany(Exception):
    pass


class RecoverySlots:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session = sessionmaker(engine)
        self._dialect = sqlite if engine.dialect.name == "sqlite" else postgresql

    def held(self, tenant: str) -> dict[str, float]:
        """The tenant's slots: each endpoint's, and when it was taken (unix seconds)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(RecoverySlotRow.endpoint_id, RecoverySlotRow.reserved_at).where(
                    RecoverySlotRow.tenant == tenant
                )
            )
            return {endpoint_id: reserved_at for endpoint_id, reserved_at in rows}

    def take(self, tenant: str, endpoint_id: str, *, most: int, now: float | None = None) -> bool:
        """The endpoint's slot, taken (or taken again) if the tenant then holds at most `most`; False, and
        nothing changed, if that would be one too many."""
        at = time.time() if now is None else now
        try:
            return self._take(tenant, endpoint_id, most=most, at=at)
        except _OneTooMany:  # raised inside the transaction: it is rolled back
            return False

    def _take(self, tenant: str, endpoint_id: str, *, most: int, at: float) -> bool:
        with self._session.begin() as session:
            if self._engine.dialect.name == "postgresql":
                # Two API replicas taking the tenant's last slot at once: one at a time.
                session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"recoveries:{tenant}"))))
            insert = self._dialect.insert(RecoverySlotRow).values(
                tenant=tenant, endpoint_id=endpoint_id, reserved_at=at
            )
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=["tenant", "endpoint_id"],
                    set_={"reserved_at": insert.excluded.reserved_at},
                )
            )
            # Written first, then counted: on SQLite the write lock makes the count exact, as the
            # advisory lock does on PostgreSQL.
            count = session.scalar(select(func.count()).where(RecoverySlotRow.tenant == tenant)) or 0
            if count > most:
                raise _OneTooMany()
        return True

    def free(self, tenant: str, endpoint_ids: Iterable[str]) -> None:
        ids = list(endpoint_ids)
        if not ids:
            return
        with self._session.begin() as session:
            session.execute(
                delete(RecoverySlotRow).where(
                    RecoverySlotRow.tenant == tenant, RecoverySlotRow.endpoint_id.in_(ids)
                )
            )

"""Ordered lanes' last sequence numbers (`lane_sequences`): read once by a fresh lane run, and advanced
before each delivery a lane starts (workflows/lane.py)."""

from __future__ import annotations

from sqlalchemy import Engine, case, select
from sqlalchemy.dialects import postgresql, sqlite

from domain import ids
from store.tables import LaneSequenceRow


class LaneSequences:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = sqlite if engine.dialect.name == "sqlite" else postgresql

    def last(self, endpoint_id: str, ordering_key: str | None) -> int:
        """The last number the lane handed out; 0 for a lane that has handed out none."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(LaneSequenceRow.last_sequence).where(
                    LaneSequenceRow.endpoint_id == endpoint_id,
                    LaneSequenceRow.lane_key == ids.lane_key(ordering_key),
                )
            ).scalar()
        return int(found or 0)

    def advance(self, tenant: str, endpoint_id: str, ordering_key: str | None, sequence: int) -> None:
        """Record `sequence` as handed out. Never lowers it: a retried or late write changes nothing."""
        insert = self._dialect.insert(LaneSequenceRow).values(
            endpoint_id=endpoint_id,
            lane_key=ids.lane_key(ordering_key),
            tenant=tenant,
            last_sequence=sequence,
        )
        current, new = LaneSequenceRow.last_sequence, insert.excluded.last_sequence
        upsert = insert.on_conflict_do_update(
            index_elements=["endpoint_id", "lane_key"],
            # CASE rather than max()/greatest(), which SQLite and PostgreSQL spell differently.
            set_={"last_sequence": case((new > current, new), else_=current)},
        )
        with self._engine.begin() as conn:
            conn.execute(upsert)

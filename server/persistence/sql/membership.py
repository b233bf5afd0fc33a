"""Cluster membership rows (one per role per process) on the shared SQL layer.

Heartbeat times are written by each process from its own clock (microseconds since the epoch); members expire
when a reader's clock says the last heartbeat is older than the expiry, so hosts need roughly synced clocks
(seconds of skew are fine: the expiry is several heartbeats long).
"""

from __future__ import annotations

from datetime import datetime

from server.persistence.interface import MemberRecord
from server.persistence.sql.tx import Database, Tx, from_micros, to_micros

_COLS = "host_id, role, rpc_address, session_start, last_heartbeat"


class SqlMembershipStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert_member(self, record: MemberRecord) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                f"INSERT INTO cluster_membership ({_COLS}) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (host_id) DO UPDATE SET role = excluded.role, rpc_address = excluded.rpc_address, "
                "session_start = excluded.session_start, last_heartbeat = excluded.last_heartbeat",
                record.host_id,
                record.role,
                record.rpc_address,
                to_micros(record.session_start),
                to_micros(record.last_heartbeat),
            )

        await self._db.run(op)

    async def list_members(self, role: str | None = None, alive_since: datetime | None = None) -> list[MemberRecord]:
        since = to_micros(alive_since) if alive_since is not None else -(1 << 62)
        if role is None:
            rows = await self._db.fetch(
                f"SELECT {_COLS} FROM cluster_membership WHERE last_heartbeat >= ? ORDER BY host_id", since
            )
        else:
            rows = await self._db.fetch(
                f"SELECT {_COLS} FROM cluster_membership WHERE role = ? AND last_heartbeat >= ? ORDER BY host_id",
                role,
                since,
            )
        return [MemberRecord(r[0], r[1], r[2], from_micros(r[3]), from_micros(r[4])) for r in rows]

    async def remove_member(self, host_id: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute("DELETE FROM cluster_membership WHERE host_id = ?", host_id)

        await self._db.run(op)

    async def prune_members(self, heartbeat_before: datetime) -> int:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                "DELETE FROM cluster_membership WHERE last_heartbeat < ?", to_micros(heartbeat_before)
            )

        return await self._db.run(op)

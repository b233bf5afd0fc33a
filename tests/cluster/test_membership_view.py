"""ClusterMembership over a real store: processes see each other, a leaver is gone at once, a crashed member
expires, and listeners hear about ring changes."""

from __future__ import annotations

import asyncio
import time

from server.cluster.membership import ClusterMembership, MembershipConfig
from server.persistence.interface import Persistence

FAST = MembershipConfig(heartbeat_seconds=0.05, expiry_seconds=0.4)


async def wait_until(check: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_members_join_leave_and_expire(persistence: Persistence) -> None:
    a = ClusterMembership(persistence.membership, {"history": "h-a:1", "frontend": "f-a:1"}, FAST)
    b = ClusterMembership(persistence.membership, {"history": "h-b:1", "matching": "m-b:1"}, FAST)
    changes: list[tuple[str, ...]] = []
    a.subscribe(lambda: changes.append(a.ring("history").members))
    await a.start()
    await b.start()
    try:
        await wait_until(lambda: a.ring("history").members == ("h-a:1", "h-b:1"))
        assert b.ring("history").members == ("h-a:1", "h-b:1")
        assert a.ring("matching").members == ("m-b:1",)
        assert a.self_member("history") == "h-a:1" and a.self_member("matching") == ""
        assert {m.role for m in a.members()} == {"history", "frontend", "matching"}
        assert changes and changes[-1] == ("h-a:1", "h-b:1")

        await b.stop()  # graceful: rows deleted, so peers drop it at their next refresh
        await a.refresh()
        await wait_until(lambda: a.ring("history").members == ("h-a:1",))

        c = ClusterMembership(persistence.membership, {"history": "h-c:1"}, FAST)
        await c.start()
        await wait_until(lambda: "h-c:1" in a.ring("history").members)
        assert c._task is not None
        c._task.cancel()  # a crash: no more heartbeats, the row stays
        began = time.monotonic()
        await wait_until(lambda: a.ring("history").members == ("h-a:1",))
        assert time.monotonic() - began >= FAST.expiry_seconds / 2
        assert any(m.host_id == "history@h-c:1" for m in await persistence.membership.list_members())
    finally:
        await a.stop()

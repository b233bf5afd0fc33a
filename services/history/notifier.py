"""In-memory wake-ups: long polls wait for new events of a run."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class Notifier:
    """One waitable per key; ``notify`` wakes every current waiter of that key."""

    def __init__(self) -> None:
        self._events: dict[Hashable, asyncio.Event] = {}
        self._waiters: dict[Hashable, int] = {}

    def notify(self, key: Hashable) -> None:
        ev = self._events.pop(key, None)
        if ev is not None:
            ev.set()

    async def wait(self, key: Hashable, seconds: float) -> bool:
        """True if notified within ``seconds``."""
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = asyncio.Event()
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            await asyncio.wait_for(ev.wait(), timeout=max(seconds, 0))
            return True
        except TimeoutError:
            return False
        finally:
            n = self._waiters[key] - 1
            if n:
                self._waiters[key] = n
            else:
                del self._waiters[key]
                if self._events.get(key) is ev:
                    del self._events[key]

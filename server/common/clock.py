"""Injectable clock so timers and timeouts can be tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return at or after ``when`` (may return early if the clock is advanced manually)."""
        ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class ManualClock:
    """A clock tests move forward by hand; sleepers wake when it passes their deadline."""

    current: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    _changed: asyncio.Event | None = None

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta | float) -> None:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self.current += delta
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def sleep_until(self, when: datetime) -> None:
        while self.current < when:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()


def monotonic() -> float:
    return time.monotonic()

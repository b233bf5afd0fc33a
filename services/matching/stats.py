"""Add/dispatch rates over the last 30 seconds, as DescribeTaskQueue reports them."""

from __future__ import annotations

import time
from collections import deque


class RateTracker:
    """Counts events in one-second buckets; ``rate()`` = events per second over the window."""

    def __init__(self, window: int = 30) -> None:
        self._window = window
        self._buckets: deque[tuple[int, int]] = deque()

    def record(self, n: int = 1) -> None:
        second = int(time.monotonic())
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1] = (second, self._buckets[-1][1] + n)
        else:
            self._buckets.append((second, n))
        self._trim(second)

    def _trim(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self._window:
            self._buckets.popleft()

    def rate(self) -> float:
        self._trim(int(time.monotonic()))
        return sum(n for _, n in self._buckets) / self._window

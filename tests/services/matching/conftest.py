"""Fixtures for the matching tests: a scripted History and a service factory on real persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from server.common.clock import ManualClock
from server.persistence.interface import Persistence
from services.matching.service import MatchingService

from .helpers import FakeHistory, fast_config

ServiceFactory = Callable[..., Awaitable[MatchingService]]


@pytest.fixture
def history() -> FakeHistory:
    return FakeHistory()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def make_service(
    persistence: Persistence, history: FakeHistory, clock: ManualClock
) -> AsyncIterator[ServiceFactory]:
    """Builds started MatchingServices on the shared test database; stops them all at the end."""
    started: list[MatchingService] = []

    async def factory(**overrides: Any) -> MatchingService:
        svc = MatchingService(persistence, clock, fast_config(**overrides), host_identity="matching-test")
        svc.history_client = history
        await svc.start()
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        await svc.stop()

"""The long-poll loop shared by the workflow and activity workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .. import exceptions as exc
from ..exceptions import RPCStatusCode

logger = logging.getLogger("durata.worker")


class TaskPoller:
    """Bounded concurrency (one slot per in-flight task), retry with backoff on poll errors, and clean
    accounting of in-flight tasks so shutdown can wait for them."""

    def __init__(self, max_concurrent: int) -> None:
        self.slots = asyncio.Semaphore(max_concurrent)
        self.inflight: set[asyncio.Task[Any]] = set()
        self.stopping = False

    async def _run_poll_loop(
        self, kind: str, poll: Callable[[], Awaitable[Any]], handle: Callable[[Any], Coroutine[Any, Any, Any]]
    ) -> None:
        backoff = 0.1
        while not self.stopping:
            await self.slots.acquire()
            try:
                resp = await poll()
                backoff = 0.1
            except exc.RPCError as err:
                self.slots.release()
                if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                    continue
                logger.warning("%s poll failed (%s), retrying: %s", kind, err.status, err.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            except Exception as err:  # e.g. channel closed underneath us
                self.slots.release()
                if self.stopping:
                    return
                logger.warning("%s poll failed, retrying: %s", kind, err)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            except BaseException:
                self.slots.release()
                raise
            if not resp.task_token:
                self.slots.release()
                continue
            t: asyncio.Task[Any] = asyncio.create_task(handle(resp))
            self.inflight.add(t)
            t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task[Any]) -> None:
        self.inflight.discard(t)
        self.slots.release()

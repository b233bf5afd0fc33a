"""Interop with the official temporalio SDK in both directions (tests may import temporalio; the SDK may not)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

from durata.worker import Worker
from temporalio import activity as t_activity
from temporalio import workflow as t_workflow
from temporalio.client import Client as TClient
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker import Worker as TWorker

from .workflows import ALL_ACTIVITIES, ALL_WORKFLOWS, Greeting, HelloWorkflow, SignalQueryUpdateWorkflow


async def test_official_client_drives_durata_worker(client, sdk_server, task_queue):
    tclient = await TClient.connect(sdk_server.target, namespace=sdk_server.namespace)
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        handle = await tclient.start_workflow("SignalQueryUpdateWorkflow", id=f"interop1-{uuid.uuid4()}",
                                              task_queue=task_queue, result_type=list)
        await handle.signal("add", "from-official")
        assert await handle.query("get_items") == ["from-official"]
        assert await handle.execute_update("add_and_count", "u") == 2
        await handle.signal("finish")
        assert await handle.result() == ["from-official", "u"]
        hello = await tclient.execute_workflow("HelloWorkflow", "Official", id=f"interop1b-{uuid.uuid4()}",
                                               task_queue=task_queue)
        assert hello == "Hello, Official! / sync hello, Official"


@dataclasses.dataclass
class TGreeting:
    greeting: str
    name: str


@t_activity.defn(name="compose")
async def t_compose(g: TGreeting) -> str:
    return f"{g.greeting}, {g.name}! (official)"


@t_workflow.defn(name="OfficialWorkflow")
class OfficialWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @t_workflow.run
    async def run(self, name: str) -> dict:
        greeting = await t_workflow.execute_activity(t_compose, TGreeting("Hello", name),
                                                     start_to_close_timeout=timedelta(seconds=10))
        await t_workflow.wait_condition(lambda: self.done)
        return {"greeting": greeting, "items": self.items}

    @t_workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @t_workflow.signal
    def finish(self) -> None:
        self.done = True

    @t_workflow.query
    def get_items(self) -> list[str]:
        return self.items

    @t_workflow.update
    def add_and_count(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)


async def test_durata_client_drives_official_worker(client, sdk_server, task_queue):
    tclient = await TClient.connect(sdk_server.target, namespace=sdk_server.namespace)
    async with TWorker(tclient, task_queue=task_queue, workflows=[OfficialWorkflow], activities=[t_compose],
                       workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow("OfficialWorkflow", "Durata", id=f"interop2-{uuid.uuid4()}",
                                             task_queue=task_queue)
        await handle.signal("add", "a")
        assert await handle.execute_update("add_and_count", "b") == 2
        assert await handle.query("get_items") == ["a", "b"]
        await handle.signal("finish")
        assert await handle.result() == {"greeting": "Hello, Durata! (official)", "items": ["a", "b"]}


async def test_mixed_workers_same_queue(client, sdk_server, task_queue):
    """Durata workflow worker + official activity worker on one queue: payloads interoperate."""
    tclient = await TClient.connect(sdk_server.target, namespace=sdk_server.namespace)
    from temporalio.api.enums.v1 import EventType  # noqa: F401 - ensures api import works alongside

    @t_activity.defn(name="compose_sync")
    async def t_compose_sync(name: str) -> str:
        return f"official sync, {name}"

    async with TWorker(tclient, task_queue=task_queue, activities=[t_compose, t_compose_sync]), \
            Worker(client, task_queue=task_queue, workflows=[HelloWorkflow]):
        result = await client.execute_workflow(HelloWorkflow.run, "Mix", id=f"interop3-{uuid.uuid4()}",
                                               task_queue=task_queue)
    assert result == "Hello, Mix! (official) / official sync, Mix"
    _ = Greeting, SignalQueryUpdateWorkflow


# ---------------------------------------------------------------- cross-SDK replay


@t_activity.defn(name="compose_sync")
async def t_compose_sync(name: str) -> str:
    return f"sync hello, {name}"


@t_workflow.defn(name="HelloWorkflow")
class THello:
    @t_workflow.run
    async def run(self, name: str) -> str:
        a = await t_workflow.execute_activity("compose", TGreeting("Hello", name),
                                              start_to_close_timeout=timedelta(seconds=10))
        b = await t_workflow.execute_activity("compose_sync", name, start_to_close_timeout=timedelta(seconds=10))
        return f"{a} / {b}"


@t_workflow.defn(name="PatchedWorkflow")
class TPatched:
    @t_workflow.run
    async def run(self) -> str:
        if t_workflow.patched("my-change"):
            return "new"
        return "old"


@t_workflow.defn(name="TimerWorkflow")
class TTimer:
    @t_workflow.run
    async def run(self) -> list:
        import asyncio

        out = []
        t0 = t_workflow.now()
        await t_workflow.sleep(timedelta(seconds=1))
        out.append(f"slept {(t_workflow.now() - t0).total_seconds() >= 1}")
        try:
            async with asyncio.timeout(0.5):
                await asyncio.sleep(100)
        except TimeoutError:
            out.append("timeout")
        try:
            await t_workflow.wait_condition(lambda: False, timeout=0.3)
        except TimeoutError:
            out.append("cond timeout")
        return out


async def test_histories_replay_across_sdks(client, sdk_server, task_queue):
    from durata.client import WorkflowHistory
    from durata.worker import Replayer
    from temporalio.client import WorkflowHistory as TWorkflowHistory
    from temporalio.worker import Replayer as TReplayer

    from .workflows import PatchedWorkflow, TimerWorkflow

    starts = [("HelloWorkflow", ["X"]), ("PatchedWorkflow", []), ("TimerWorkflow", [])]
    durata_handles = []
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        for name, args in starts:
            h = await client.start_workflow(name, args=args, id=f"xr-d-{uuid.uuid4()}", task_queue=task_queue)
            await h.result()
            durata_handles.append(h)
    official = TReplayer(workflows=[THello, TPatched, TTimer], workflow_runner=UnsandboxedWorkflowRunner())
    for h in durata_handles:
        hist = await h.fetch_history()
        result = await official.replay_workflow(TWorkflowHistory.from_json(h.id, hist.to_json()),
                                                raise_on_replay_failure=False)
        assert result.replay_failure is None, f"official replay of Durata history {h.id}: {result.replay_failure}"

    tclient = await TClient.connect(sdk_server.target, namespace=sdk_server.namespace)
    tq2 = f"{task_queue}-official"
    official_ids = []
    async with TWorker(tclient, task_queue=tq2, workflows=[THello, TPatched, TTimer],
                       activities=[t_compose, t_compose_sync], workflow_runner=UnsandboxedWorkflowRunner()):
        for name, args in starts:
            th = await tclient.start_workflow(name, args=args, id=f"xr-o-{uuid.uuid4()}", task_queue=tq2)
            await th.result()
            official_ids.append(th.id)
    ours = Replayer(workflows=[HelloWorkflow, PatchedWorkflow, TimerWorkflow])
    for wid in official_ids:
        hist = await client.get_workflow_handle(wid).fetch_history()
        result = await ours.replay_workflow(WorkflowHistory(wid, hist.events), raise_on_replay_failure=False)
        assert result.replay_failure is None, f"Durata replay of official history {wid}: {result.replay_failure}"

"""Replay saved histories against workflow code to check determinism."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from .. import workflow as wf
from .._history import WorkflowHistory
from ..converter import DataConverter
from ._workflow_instance import WorkflowInstance


@dataclasses.dataclass
class WorkflowReplayResult:
    history: WorkflowHistory
    replay_failure: Exception | None


class Replayer:
    """``Replayer(workflows=[...]).replay_workflow(history)`` raises on non-determinism (by default)."""

    def __init__(self, *, workflows: Sequence[type], namespace: str = "ReplayNamespace",
                 data_converter: DataConverter | None = None, **_ignored: object) -> None:
        self.defns = {wf._get_definition(w).name: wf._get_definition(w) for w in workflows}
        self.namespace = namespace
        self.converter = data_converter or DataConverter.default

    async def replay_workflow(self, history: WorkflowHistory, *, raise_on_replay_failure: bool = True
                              ) -> WorkflowReplayResult:
        result = self._replay(history)
        if result.replay_failure is not None and raise_on_replay_failure:
            raise result.replay_failure
        return result

    async def replay_workflows(self, histories: Iterable[WorkflowHistory], *, raise_on_replay_failure: bool = True
                               ) -> list[WorkflowReplayResult]:
        return [await self.replay_workflow(h, raise_on_replay_failure=raise_on_replay_failure) for h in histories]

    def _replay(self, history: WorkflowHistory) -> WorkflowReplayResult:
        if not history.events:
            return WorkflowReplayResult(history, ValueError("History has no events"))
        wtype = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        defn = self.defns.get(wtype)
        if defn is None:
            return WorkflowReplayResult(history, ValueError(
                f"Workflow type {wtype} is not registered with the replayer, available: {', '.join(sorted(self.defns))}"))
        inst = WorkflowInstance.create(defn, self.namespace, history.workflow_id, history.run_id, self.converter)
        try:
            inst.process_history(history.events, 0)
            if inst.task_failure is not None:
                raise inst.task_failure
        except Exception as err:
            return WorkflowReplayResult(history, err)
        finally:
            inst.dispose()
        return WorkflowReplayResult(history, None)

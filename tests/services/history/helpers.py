"""A tiny scripted 'worker' that drives the History handler the way Matching + an SDK would."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import duration_pb2
from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import command_type_pb2, task_queue_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import service_pb2 as hs

CT = command_type_pb2.CommandType
TASK_QUEUE = "tq"


def payloads(*values: bytes) -> common_pb2.Payloads:
    return common_pb2.Payloads(payloads=[common_pb2.Payload(metadata={"encoding": b"json/plain"}, data=v) for v in values])


def dur(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(int(seconds * 1000))
    return d


def cmd_activity(activity_id: str, **kw: Any) -> command_pb2.Command:
    attrs = command_pb2.ScheduleActivityTaskCommandAttributes(
        activity_id=activity_id,
        activity_type=common_pb2.ActivityType(name="act"),
        task_queue=taskqueue_pb2.TaskQueue(name=TASK_QUEUE),
        start_to_close_timeout=dur(kw.pop("start_to_close", 10)),
        **kw,
    )
    return command_pb2.Command(command_type=CT.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, schedule_activity_task_command_attributes=attrs)


def cmd_timer(timer_id: str, seconds: float) -> command_pb2.Command:
    return command_pb2.Command(
        command_type=CT.COMMAND_TYPE_START_TIMER,
        start_timer_command_attributes=command_pb2.StartTimerCommandAttributes(timer_id=timer_id, start_to_fire_timeout=dur(seconds)),
    )


def cmd_complete(result: bytes = b'"done"') -> command_pb2.Command:
    return command_pb2.Command(
        command_type=CT.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=command_pb2.CompleteWorkflowExecutionCommandAttributes(result=payloads(result)),
    )


def assert_dense(events: list[history_pb2.HistoryEvent]) -> None:
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert e.WhichOneof("attributes") is not None
        assert e.HasField("event_time")


def names(events: list[history_pb2.HistoryEvent]) -> list[str]:
    from temporalio.api.enums.v1 import event_type_pb2

    return [event_type_pb2.EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]


class Driver:
    def __init__(self, env: Any) -> None:
        self.env = env
        self.h = env.handler
        self.ns = env.namespace_id
        self._wft_seen = 0
        self._act_seen = 0

    async def start(self, workflow_id: str = "wf", **kw: Any) -> str:
        req = ws.StartWorkflowExecutionRequest(
            namespace="default",
            workflow_id=workflow_id,
            workflow_type=common_pb2.WorkflowType(name="Wf"),
            task_queue=taskqueue_pb2.TaskQueue(name=TASK_QUEUE),
            request_id=kw.pop("request_id", str(uuid.uuid4())),
            identity="client",
            **kw,
        )
        resp = await self.h.StartWorkflowExecution(hs.StartWorkflowExecutionRequest(namespace_id=self.ns, request=req))
        return resp.run_id

    async def next_wft_add(self) -> Any:
        m = self.env.matching
        await m.wait_for(lambda: len(m.workflow_tasks) > self._wft_seen)
        add = m.workflow_tasks[self._wft_seen]
        self._wft_seen += 1
        return add

    async def poll_wft(self, *, sticky: str = "", identity: str = "worker-1") -> ws.PollWorkflowTaskQueueResponse:
        add = await self.next_wft_add()
        tq = taskqueue_pb2.TaskQueue(name=TASK_QUEUE, kind=task_queue_pb2.TASK_QUEUE_KIND_NORMAL)
        if sticky:
            tq = taskqueue_pb2.TaskQueue(name=sticky, kind=task_queue_pb2.TASK_QUEUE_KIND_STICKY, normal_name=TASK_QUEUE)
        return await self.h.RecordWorkflowTaskStarted(
            hs.RecordWorkflowTaskStartedRequest(
                namespace_id=self.ns,
                workflow_execution=add.execution,
                scheduled_event_id=add.scheduled_event_id,
                attempt=add.attempt,
                stamp=add.stamp,
                request_id=str(uuid.uuid4()),
                poll_request=ws.PollWorkflowTaskQueueRequest(namespace="default", task_queue=tq, identity=identity),
            )
        )

    async def complete(self, task: ws.PollWorkflowTaskQueueResponse, commands: list[command_pb2.Command], **kw: Any) -> Any:
        req = ws.RespondWorkflowTaskCompletedRequest(task_token=task.task_token, commands=commands, identity="worker-1", **kw)
        return await self.h.RespondWorkflowTaskCompleted(hs.RespondWorkflowTaskCompletedRequest(namespace_id=self.ns, request=req))

    async def poll_activity(self) -> ws.PollActivityTaskQueueResponse:
        m = self.env.matching
        await m.wait_for(lambda: len(m.activity_tasks) > self._act_seen)
        add = m.activity_tasks[self._act_seen]
        self._act_seen += 1
        return await self.h.RecordActivityTaskStarted(
            hs.RecordActivityTaskStartedRequest(
                namespace_id=self.ns,
                workflow_execution=add.execution,
                scheduled_event_id=add.scheduled_event_id,
                attempt=add.attempt,
                stamp=add.stamp,
                request_id=str(uuid.uuid4()),
                poll_request=ws.PollActivityTaskQueueRequest(namespace="default", identity="act-worker"),
            )
        )

    async def history(self, workflow_id: str, run_id: str = "") -> list[history_pb2.HistoryEvent]:
        events: list[history_pb2.HistoryEvent] = []
        token = b""
        while True:
            req = ws.GetWorkflowExecutionHistoryRequest(
                namespace="default",
                execution=common_pb2.WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                next_page_token=token,
            )
            resp = await self.h.GetWorkflowExecutionHistory(hs.GetWorkflowExecutionHistoryRequest(namespace_id=self.ns, request=req))
            events.extend(resp.history.events)
            token = resp.next_page_token
            if not token:
                break
        assert_dense(events)
        return events

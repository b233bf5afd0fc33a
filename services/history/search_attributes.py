"""Search attributes on the History side: the namespace's registered attributes for validating upsert commands,
and the typed slot values of a run's visibility row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import command_type_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc

from server.common.errors import InvalidArgument
from server.common.search_attribute_catalogue import unknown_names, validate_search_attributes
from server.common.search_attribute_values import slot_values
from server.persistence.schema import PREDEFINED_COLUMNS

from .activities import CommandError
from .mutable_state import MutableState

if TYPE_CHECKING:
    from .engine import Engine

CT = command_type_pb2.CommandType


def upserted_attributes(commands: list[command_pb2.Command]) -> list[common_pb2.SearchAttributes]:
    """The search attributes that commands carry (upsert, continue-as-new, child): worth validating."""
    out = []
    for c in commands:
        if c.command_type == CT.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            out.append(c.upsert_workflow_search_attributes_command_attributes.search_attributes)
        elif c.command_type == CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
            if c.continue_as_new_workflow_execution_command_attributes.search_attributes.indexed_fields:
                out.append(c.continue_as_new_workflow_execution_command_attributes.search_attributes)
        elif c.command_type == CT.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION:
            if c.start_child_workflow_execution_command_attributes.search_attributes.indexed_fields:
                out.append(c.start_child_workflow_execution_command_attributes.search_attributes)
    return out


async def namespace_aliases(
    engine: Engine, namespace_id: str, attributes: list[common_pb2.SearchAttributes]
) -> dict[str, str]:
    """slot -> alias for the namespace, read again if some attribute name is not known: it may have been
    registered a moment ago, and a visibility row written without its slot would miss the run in queries. (Runs
    still carrying a since-removed attribute pay one namespace read per visibility write.)"""
    ns = await engine.namespaces.get(namespace_id)
    if any(unknown_names(a, ns.search_attribute_aliases) for a in attributes):
        engine.namespaces.invalidate(namespace_id)
        ns = await engine.namespaces.get(namespace_id)
    return ns.search_attribute_aliases


async def visibility_slot_values(
    engine: Engine, namespace_id: str, attributes: common_pb2.SearchAttributes
) -> dict[str, object]:
    if not attributes.indexed_fields:
        return {}
    # Only server-maintained predefined attributes (BuildIds on nearly every run): no namespace lookup needed.
    if all(name in PREDEFINED_COLUMNS for name in attributes.indexed_fields):
        return slot_values(attributes, {})
    aliases = await namespace_aliases(engine, namespace_id, [attributes])
    return slot_values(attributes, aliases)


def _task_queue_text(tq: object) -> str:
    name = getattr(tq, "name", "")
    return f'name:"{name}"'


def check_command_search_attributes(ms: MutableState, cmd: command_pb2.Command) -> None:
    """Temporal's checks on the search attributes of a ContinueAsNew / StartChildWorkflow command: the workflow
    task fails with BAD_SEARCH_ATTRIBUTES and Temporal's text. Skipped when the caller supplied no aliases, and
    for a child in another namespace (whose attributes are not at hand)."""
    aliases = ms.search_attribute_aliases
    if aliases is None:
        return
    if cmd.command_type == CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
        can = cmd.continue_as_new_workflow_execution_command_attributes
        sas = can.search_attributes
        where = "ContinueAsNewWorkflowExecutionCommand"
        tail = f"WorkflowType={can.workflow_type.name} TaskQueue={_task_queue_text(can.task_queue)}"
    else:
        child = cmd.start_child_workflow_execution_command_attributes
        if child.namespace and child.namespace != ms.namespace_name:
            return
        sas = child.search_attributes
        where = "StartChildWorkflowCommand"
        tail = (
            f"WorkflowId={child.workflow_id} WorkflowType={child.workflow_type.name} "
            f"Namespace={child.namespace or ms.namespace_name}"
        )
    if not sas.indexed_fields:
        return
    try:
        validate_search_attributes(sas, aliases)
    except InvalidArgument as e:
        raise CommandError(
            fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES,
            f"invalid SearchAttributes on {where}: {e.message}. {tail}",
        ) from None

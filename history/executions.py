"""One workflow execution as Temporal describes it, for the read side of `service/`."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode


async def describe(
    client: Client, workflow_id: str, *, rpc_timeout: timedelta
) -> WorkflowExecutionDescription | None:
    """The latest run of `workflow_id`, or None when Temporal has none (never started, or past retention).
    Any other failure is raised: a timeout is not an answer that it does not exist."""
    try:
        return await client.get_workflow_handle(workflow_id).describe(rpc_timeout=rpc_timeout)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise

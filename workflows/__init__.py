"""Temporal workflows: `EventWorkflow` fans an event out, `DeliveryWorkflow` delivers it to one endpoint."""

"""The delivery service: the operations the product has, between its front doors and Temporal.

The HTTP API (api/), and through it the `webhooks` command and the dashboard, are thin adapters over
these. Each operation takes the tenant, returns domain models (models.py) and raises one tree of errors
(errors.py); Temporal's and the store's own errors are translated at the boundary (boundary.py).

- `Events` (events.py): emit an event, read one back.
- `Deliveries` (deliveries.py): list, count, read and retry deliveries; operators' overview.
- `Endpoints` (endpoints.py): the endpoint store with its rules.
- `health.check` (health.py): store, Temporal, workers.
- `pages` (pages.py): list cursors and windows over what history/visibility.py finds.
"""

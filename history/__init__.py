"""The read side of Temporal's own record, below both the API's service and the activities: the
visibility queries and the search attributes deliveries are listed by (`visibility`), and an event as its
workflow's history holds it (`events`). Nothing here writes, or imports from above it."""

"""The endpoint store, in SQL (SQLite or PostgreSQL): its tables and migrations, endpoints and their
sealed secrets, signing keys, session revocations, endpoint health, the door's rate limits and the
per-endpoint flow. Below the service and the activities; above `core` and `domain` only."""

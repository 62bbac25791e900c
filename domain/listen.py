"""What the API and the `webhooks listen` CLI both know of a listen session, with nothing to import beside
it: the CLI, a thin HTTP client, reads its one string from here instead of loading the SQL store (and
SQLAlchemy and Temporal with it) at every start."""

from __future__ import annotations

# A listening endpoint's URL: no HTTP URL, so no attempt to it is ever a POST, and no endpoint made through
# the API (whose URLs must be http or https) is ever mistaken for one.
LISTEN_URL = "listen://webhooks-cli"
# How a session that ended because its CLI went silent says so (its `close_reason` starts with it): the
# one end after which the CLI opens a session again by itself (cli/listen.py).
SILENT_CLI = "its CLI was not heard from"

"""`webhooks`: the operators' command line over the HTTP API."""

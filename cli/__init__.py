"""The command lines: `webhooks` (main.py), the operators' client of the HTTP API; and the commands run
where the service runs: `python -m cli.migrate` (the store's schema), `python -m cli.keys` (the jwt
signing keys) and `python -m cli.crypto` (a new encryption key)."""

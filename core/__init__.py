"""Plumbing shared by every process: settings, encryption, signing, the egress guard, portal session
tokens, logs and the Temporal connection. Nothing here imports FastAPI, touches the endpoint store or
starts a process."""

"""Code shared by the API, the worker, the workflows and the activities.

Nothing here imports FastAPI or starts a process: settings, the event catalog, signing and each tenant's
signing keys, the endpoint store, the Temporal connection and the models exchanged with workflows and
activities.
"""

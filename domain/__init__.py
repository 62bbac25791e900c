"""The service's own vocabulary, as plain types and pure functions: the event catalog, ids, the models
exchanged with workflows and activities, scopes, search attribute names, fairness keys, durations and
custom header rules. Nothing here does I/O or imports from another package of ours."""

"""The HTTP API: emits events, manages endpoints, and reads Temporal to present the webhook logs."""

"""`make chaos`: faults injected for real into the running stack, counted into RELIABILITY.md's table."""

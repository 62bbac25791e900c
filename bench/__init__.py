"""`make bench`: throughput, latency, fan-out, isolation, backlog and memory of the whole stack."""

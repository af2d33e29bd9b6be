"""Benchmarks of the refund service on the embedded local stack (``make bench``).

They print figures: DynamoDB round trips per operation, the overhead of the HTTP API over the
same calls made directly, the poller's read cost against history, cold import time, and
throughput. A missed target is printed, not failed; ``overhead`` fails (exit status 1) when its
two paths did not make the same calls. See docs/benchmarks.md for the figures and how to
reproduce them.
"""

"""Benchmarks of the refund service on the embedded local stack (``make bench``).

They print figures, not pass/fail: DynamoDB round trips per operation, the overhead of the
HTTP API over the calls it cannot avoid, the poller's read cost against history, cold import
time, and throughput. See docs/benchmarks.md for the figures and how to reproduce them.
"""

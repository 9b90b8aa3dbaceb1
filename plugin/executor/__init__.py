"""The executor: claims due requests and steps with a lease, runs each step's one adapter call
outside any transaction, and records the outcome (with evidence) before the step counts as done.

- `locks`: serialising one kind of write across processes (PostgreSQL advisory locks, SQLite's
  single writer).
- `leases`: claiming due work (`FOR UPDATE SKIP LOCKED` on PostgreSQL), renewing, reclaiming.
- `backoff`: when a failed step is tried again.
- `steps`: running one step, recording it, the request's status, `retry_step` and `confirm_step`.
- `worker`: the loop that keeps a bounded number of claims in flight; `gallra worker` in `cli`.
"""

"""The executor: runs each claimed step's one adapter call outside any transaction, and records the
outcome (with evidence) before the step counts as done. It knows steps, not why they were planned:
the pipelines above it plan, and call it.

- `context`: what every part is handed (`ExecContext`: runtime, `Sources`, `WorkerConfig`).
- `leases`: claiming due work (`FOR UPDATE SKIP LOCKED` on PostgreSQL), renewing, reclaiming.
- `backoff`: when a failed step is tried again.
- `dispatch`: running one claimed step (`run_step`): the adapter call, or the covering erasure.
- `outcomes`: recording success, failure and verification look-ups, with their evidence.
- `verify`: whether an erasure is seen to have taken effect.
- `status`: a request's status derived from its steps (`refresh_request`).
- `own_data`: Gallra's own database as the Gallra adapter reaches it (`AdapterContext.own_records`).
- `actions`: what the shop owner does: `retry_step`, `retry_request`, `confirm_step`.
- `records`, `shipments`: how a step is named in evidence; the shipments its subject carries.
"""

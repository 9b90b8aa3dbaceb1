"""The privacy pipelines: each ledger request becomes persisted steps, the executor runs them, and
when they are all settled the pipeline writes its documents. The pipelines call the executor,
never the other way round.

- `worker`: the loop that claims due requests and steps; `gallra worker` and `gallra serve` run it.
- `run`: a request's life: `plan_request`, then `finalize_request` once its steps are settled.
- `gather`: a subject's holdings across Shopify and the shop's adapters (`sources`: where from).
- `customer_redact`, `data_request`, `shop_redact`: one module per Shopify compliance topic.
- `enqueue`: plan → step rows (`enqueue_plan`), shared by the pipelines and the retention sweep.
- `holds`: a `keep until` step that comes due re-plans its holding; legal holds and claims.
- `merges`, `uninstall`: customers/merge and app/uninstalled, applied by clocks.
"""

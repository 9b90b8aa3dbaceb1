"""The privacy pipelines: each ledger request kind becomes persisted steps and, when they are all
settled, its documents.

- `steps`: plan → steps (`enqueue_plan`), shared by the pipelines and the retention sweep.
- `gather`: a subject's holdings across Shopify and the shop's adapters.
- `customer_redact`, `data_request`, `shop_redact`: one module per Shopify compliance topic.
- `holds`: a `keep until` step that comes due re-plans its holding.
- `run`: the executor's entry points, `plan_request` and `finalize_request`.
"""

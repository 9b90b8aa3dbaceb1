"""Webhook intake: verify the signature, parse, store the delivery and the ledger request in one
transaction, and only then answer 2xx. No work happens on the request path."""

"""The shop owner's embedded admin: server-rendered pages and a JSON API, both authenticated with
App Bridge session tokens and scoped to the token's shop."""

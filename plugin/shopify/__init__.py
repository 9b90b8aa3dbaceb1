"""Everything Gallra needs to talk to a shop: session tokens, install flows, tokens, the Admin
GraphQL client, bulk operations and the typed operations."""

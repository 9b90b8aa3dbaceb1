"""Gallra: privacy operations for Shopify shops."""

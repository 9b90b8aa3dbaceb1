"""Adapters: one module per external system, all behind `adapters.base.Adapter`."""

"""Connectors: how a step's action reaches a service (HTTP, webhook, email, built-ins)."""

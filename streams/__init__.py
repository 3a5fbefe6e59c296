"""Faust agents: one app (``streams.app``), one module per agent."""

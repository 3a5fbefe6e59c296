"""Flowledger: run, watch and repair automation workflows, event-sourced on Kafka."""

__version__ = "0.1.0"

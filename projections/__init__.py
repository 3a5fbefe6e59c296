"""ClickHouse projections of the event log: DDL, the projector, typed queries."""

"""Pure domain logic: no Kafka, ClickHouse, HTTP or clock imports.

Everything here takes its inputs (including ``now``) as arguments and returns
values, so it is unit-tested table-driven and reused by agents, projections
and routes alike.
"""

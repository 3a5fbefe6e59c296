"""Errors of the projections package.

ProjectionError            root; every error raised here derives from it
├── WarehouseUnavailable   ClickHouse could not be reached or opened (retryable)
└── MigrationError         a numbered DDL file failed to apply
"""


class ProjectionError(Exception):
    """Root of projection errors."""


class WarehouseUnavailable(ProjectionError):
    """ClickHouse cannot be reached or its embedded data path cannot be opened."""

    retryable = True


class MigrationError(ProjectionError):
    """A migration file failed; the message names the file."""

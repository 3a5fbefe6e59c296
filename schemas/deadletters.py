"""The dead-letter record: what could not be read, why, and where it came from.

Not an envelope: a dead letter may have no readable tenant or type at all.
"""

from datetime import datetime

from pydantic import Field

from schemas.envelope import FrozenModel

RAW_PREVIEW_LIMIT = 4096


class DeadLetter(FrozenModel):
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    item_index: int = Field(default=-1, ge=-1, description="-1: the whole record value.")
    reason: str
    raw_preview: str = Field(description="Start of the raw value, undecodable bytes escaped.")
    tenant_id: str = ""
    dead_lettered_at: datetime

    @property
    def source(self) -> str:
        """``topic[partition]@offset`` plus ``#index`` for one item of a batch."""
        base = f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"
        return base if self.item_index < 0 else f"{base}#{self.item_index}"


def preview(raw: bytes | None) -> str:
    if raw is None:
        return ""
    return raw[:RAW_PREVIEW_LIMIT].decode("utf-8", "backslashreplace")

-- Records the projector could not decode or validate, one row per bad item,
-- keyed by where they came from so a redelivered bad record is one row.
CREATE TABLE IF NOT EXISTS dead_letters
(
    source_topic     LowCardinality(String),
    source_partition UInt16,
    source_offset    UInt64,
    item_index       Int32,
    source           String,
    tenant_id        String,
    reason           String,
    raw_preview      String,
    dead_lettered_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (source_topic, source_partition, source_offset, item_index);

from datetime import UTC, datetime

import orjson
import pytest

from flowledger.client import MAX_RECORDS_PER_MESSAGE, pack, partition_of
from schemas import RECORD_TYPES, decode, encode, json_schemas, validate_item
from schemas.envelope import Envelope
from schemas.registry import UPCASTERS, register_upcaster, upcast
from tests.factories import as_json, run_with_retry

GOOD = as_json(run_with_retry("acme", "wf-1", "run-1"))


def test_lifecycle_names_are_the_public_contract():
    for name in ("RunStarted", "StepStarted", "StepSucceeded", "StepFailed", "RunSucceeded",
                 "RunFailed", "RunCancelled"):  # fmt: skip
        assert name in RECORD_TYPES


def test_every_record_round_trips_through_json():
    for item in GOOD:
        record = validate_item(item)
        assert isinstance(record, Envelope)
        assert orjson.loads(record.model_dump_json()) == item


def _with(base: dict, path: str, value) -> dict:
    out = orjson.loads(orjson.dumps(base))
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


STEP_FAILED = next(i for i in GOOD if i["type"] == "StepFailed")


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("event_id", "not-a-uuid", "event_id"),
        ("occurred_at", "2026-01-01T00:00:00", "timezone"),
        ("tenant_id", "", "tenant_id"),
        ("tenant_id", "has space", "tenant_id"),
        ("type", "StepExploded", "type"),
        ("payload.attempt", 0, "attempt"),
        ("payload.service", "Not A Slug", "service"),
        ("payload.error", ..., "error"),
        ("payload.error.status_code", 999, "status_code"),
        ("payload.duration_ms", -1, "duration_ms"),
        ("payload.params_digest", "ada@example.com", "params_digest"),
        ("payload.fallback_for", "Not A Slug", "fallback_for"),
        ("step_id", ..., "step_id"),
        ("payload.surprise", 1, "surprise"),
        ("schema_version", 7, "schema_version"),
    ],
)
def test_invalid_items_are_refused_with_a_reason_naming_the_field(path, value, reason):
    outcome = validate_item(_with(STEP_FAILED, path, value))
    assert isinstance(outcome, str)
    assert reason in outcome


def test_secrets_in_free_form_payloads_are_refused():
    started = dict(GOOD[0], payload={"inputs": {"headers": {"Authorization": "Bearer abc"}}})
    outcome = validate_item(started)
    assert isinstance(outcome, str) and "credential_id" in outcome


def test_tokens_echoed_in_error_messages_are_masked():
    item = _with(STEP_FAILED, "payload.error.message", "invalid token xoxb-2222222222-abcdefghijkl")
    record = validate_item(item)
    assert isinstance(record, Envelope)
    assert "abcdefghijkl" not in record.model_dump_json()


def test_offset_times_keep_their_instant():
    record = validate_item(_with(GOOD[0], "occurred_at", "2026-01-05T10:00:00+01:00"))
    assert record.occurred_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_decode_fast_path_and_partial_batches():
    good, bad = decode(orjson.dumps(GOOD))
    assert len(good) == len(GOOD) and bad == []
    mixed = [GOOD[0], {"type": "RunStarted"}, 3, GOOD[1]]
    good, bad = decode(orjson.dumps(mixed))
    assert [r.event_id for r in good] == [GOOD[0]["event_id"], GOOD[1]["event_id"]]
    assert [b.index for b in bad] == [1, 2]


@pytest.mark.parametrize("value", [b"", b"\xff\xfe garbage", b"42", b'"text"', b"{not json"])
def test_decode_never_raises_on_garbage(value):
    good, bad = decode(value)
    assert good == [] and len(bad) == 1 and bad[0].index is None


def test_upcasters_lift_old_versions_before_validation():
    @register_upcaster("RunCancelled", 0)
    def rename_why(raw: dict) -> dict:
        payload = dict(raw.get("payload", {}))
        payload["reason"] = payload.pop("why", None)
        return {**raw, "payload": payload}

    try:
        old = {**GOOD[0], "type": "RunCancelled", "schema_version": 0, "payload": {"why": "user"}}
        assert upcast(old)["schema_version"] == 1
        record = validate_item(old)
        assert isinstance(record, Envelope) and record.payload.reason == "user"
    finally:
        UPCASTERS.pop(("RunCancelled", 0))


def test_json_schema_covers_every_record_and_the_union():
    schemas = json_schemas()
    assert set(RECORD_TYPES) <= set(schemas)
    assert "discriminator" in orjson.dumps(schemas["Record"]).decode()


def test_pack_groups_by_key_keeps_order_and_chunks():
    records = [validate_item(i) for i in GOOD]
    messages = pack(records)
    assert len(messages) == 1
    topic, key, value = messages[0]
    assert (topic, key) == ("workflow-events", b"run-1")
    assert [r.event_id for r in decode(value)[0]] == [r.event_id for r in records]
    many = pack(records * (MAX_RECORDS_PER_MESSAGE // len(records) + 1))
    assert len(many) == 2
    assert encode(records) == value


@pytest.mark.parametrize("partitions", [1, 4, 7])
def test_pack_by_partition_shares_messages_between_runs_and_keeps_each_runs_order(partitions):
    runs = [[validate_item(i) for i in as_json(run_with_retry("acme", f"wf-{n % 3}", f"run-{n}"))] for n in range(40)]
    interleaved = [record for step in zip(*runs, strict=True) for record in step]  # as a busy executor emits them
    messages = pack(interleaved, {"workflow-events": partitions})
    assert len(messages) <= partitions  # 40 runs, under the per-message limits
    seen: dict[str, list[str]] = {}
    for topic, key, value in messages:
        assert topic == "workflow-events"
        for record in decode(value)[0]:
            # where a producer sending this record alone would put it: the message's own partition
            assert partition_of(record.partition_key.encode(), partitions) == partition_of(key, partitions)
            seen.setdefault(record.run_id, []).append(record.event_id)
    assert seen == {run[0].run_id: [r.event_id for r in run] for run in runs}


@pytest.mark.parametrize(("key", "java_hash"), [
    (b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829), (b"abc", 479470107),
])  # fmt: skip
def test_partition_of_matches_the_kafka_java_client(key, java_hash):
    # the Java client's murmur2 of these keys (Kafka's own test vectors), made positive, modulo the count
    for partitions in (1, 4, 7, 1000):
        assert partition_of(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions

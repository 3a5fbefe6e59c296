"""The one Faust app. Agents register themselves by being imported here.

Run with ``flowledger worker`` (which sets the broker from
KAFKA_BOOTSTRAP_SERVERS). Faust's own web server is off: the REST API is the
system's HTTP surface, and a fixed web port would collide between workers.
"""

import os
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from flowledger.settings import Settings

settings = Settings()

FETCH_MAX_WAIT_MS = 10
"""How long a broker may hold a fetch that found nothing. Faust pins 1,500 ms, and
on the embedded broker a fetch often waits that long before returning new
records: every hop of a run through the log would cost up to 1.5 s."""


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original_create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
    return consumer


_original_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]

app = faust.App(
    "flowledger",
    broker=f"kafka://{settings.kafka_bootstrap_servers or 'localhost:9092'}",
    store="memory://",
    web_enabled=False,
    topic_replication_factor=1,
    topic_allow_declare=True,
    producer_acks=-1,
    broker_commit_every=1000,
    broker_commit_interval=1.0,
    # CRC32C is checked in pure Python by aiokafka; the broker checks it on produce.
    broker_check_crcs=False,
    datadir=str(settings.flowledger_data_dir / "faust" / os.environ.get("FLOWLEDGER_WORKER_ID", "w1")),
)

# Agents (imported for their registration side effect).
from streams import alerts, executor, ingest_stats, metrics  # noqa: E402,F401

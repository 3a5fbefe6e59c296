"""The one Faust app. Agents register themselves by being imported here.

Run with ``flowledger worker`` (which sets the broker from
KAFKA_BOOTSTRAP_SERVERS). Faust's own web server is off: the REST API is the
system's HTTP surface, and a fixed web port would collide between workers.
"""

import os

import faust

from flowledger.settings import Settings

settings = Settings()

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
    datadir=str(settings.flowledger_data_dir / "faust" / os.environ.get("FLOWLEDGER_WORKER_ID", "w1")),
)

# Agents (imported for their registration side effect).
from streams import executor, ingest_stats  # noqa: E402,F401

"""The Faust app of a worker process. Agents register themselves by being imported here.

Run with ``flowledger worker [--role all|executor|monitor]`` (which sets the
broker from KAFKA_BOOTSTRAP_SERVERS and the role in FLOWLEDGER_WORKER_ROLE).
Faust's own web server is off: the REST API is the system's HTTP surface, and
a fixed web port would collide between workers.

Roles (each is its own Faust app, so its own consumer group, tables and
changelog topics, and can run in its own process, on its own core):

* ``executor`` (app ``flowledger-executor``): the workflow executor
  (``streams.executor``) over ``workflow-commands``;
* ``monitor`` (app ``flowledger-monitor``): the metric and anomaly agents
  (``streams.metrics``) over ``workflow-events`` and the ingest counts;
* ``all`` (app ``flowledger``, the default): both in one process.

Every role publishes a heartbeat (``streams.ingest_stats``).
"""

import logging
import os
from collections.abc import Callable
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka as faust_aiokafka

from flowledger.settings import WORKER_APP_IDS, Settings
from streams.fetch_pacing import FetchPacing, pace_fetches

settings = Settings()
log = logging.getLogger(__name__)

FETCH_MAX_WAIT_MS = 10
"""How long a broker may hold a fetch that found nothing, while commands come. Faust pins
1,500 ms, and on the embedded broker a fetch often waits that long before returning new
records: every hop of a run through the log would cost up to 1.5 s."""

IDLE_FETCH_MAX_WAIT_MS = 50
"""The longest wait, after a row of empty fetches (``streams.fetch_pacing``): an idle
executor asks twenty times a second instead of about eighty. A command that comes
after a quiet spell waits up to about half of it for the fetch that finds it
(``flowledger bench execution --runs 60 --rate 2``, a run every 500 ms: step dispatch
p99 13 ms with a fixed 10 ms wait, 29-31 ms with this ceiling, 54 ms with 100 ms)."""


MONITOR_FETCH_MAX_WAIT_MS = 100
"""A worker running only the metric agents has no one waiting on it by the
millisecond (windows close on event time, after seconds): a fetch that found
nothing may wait 100 ms. It asks for no minimum of bytes: on the embedded
broker a fetch that waits for more bytes costs more and answers later, as if
the partition were read again and again, each read in proportion to its batches
(``flowledger bench broker``: one partition of 20,000 small batches taking 25
more a second cost it 48.9% of a core and a p99 of 739 ms with 64 KiB, against
35.4% and 88 ms with none)."""


MONITOR_NICE = 10
"""A monitor worker runs at this lower CPU priority: when the cores are short,
step dispatch goes first and the metrics fall behind, then catch up."""


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original_create_worker_consumer(self, transport)
    # read when the consumer starts its fetcher
    if ROLE == "monitor":
        consumer._fetch_max_wait_ms = MONITOR_FETCH_MAX_WAIT_MS
    else:
        pace_fetches(consumer, FetchPacing(FETCH_MAX_WAIT_MS, IDLE_FETCH_MAX_WAIT_MS))
    return consumer


_original_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]


async def _perform_seek(self: Any) -> None:
    """Seek every assigned partition back to its committed offset, or to its beginning when it has none.

    Faust rewinds to the committed offsets after a rebalance, and whenever a
    fetch returns while flow is suspended (the records of that fetch are
    dropped, to be read again from there). aiokafka's ``seek_to_committed``
    leaves a partition that has no committed offset where its fetch position
    is, so the dropped records of a partition nobody has committed yet (a new
    group, or one whose only member died before its first commit) were never
    read again. With ``auto_offset_reset`` earliest, that partition's
    committed position is its beginning.
    """
    await _original_perform_seek(self)
    if self.app.conf.consumer_auto_offset_reset != "earliest":
        return
    uncommitted = [
        tp for tp in self.assignment() if not self._is_changelog_tp(tp) and not self._committed_offset.get(tp)
    ]
    if uncommitted:
        try:
            await self._thread.seek_to_beginning(*map(faust_aiokafka.ensure_aiokafka_TP, uncommitted))
        except IllegalStateError:  # revoked meanwhile: the rebalance that took it seeks again when it completes
            log.warning("partitions revoked while seeking them to their beginning: %s", uncommitted)


_original_perform_seek = faust_aiokafka.Consumer.perform_seek
faust_aiokafka.Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]

ROLES = ("all", "executor", "monitor")
ROLE = settings.flowledger_worker_role
APP_IDS = WORKER_APP_IDS
RUNS_EXECUTOR = ROLE in ("all", "executor")
RUNS_MONITOR = ROLE in ("all", "monitor")
WORKER_ID = os.environ.get("FLOWLEDGER_WORKER_ID", "w1")

app = faust.App(
    APP_IDS[ROLE],
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
    # A SIGKILLed worker's partitions wait this long before they are assigned again (Faust's default is 60 s).
    broker_session_timeout=settings.flowledger_worker_session_timeout_s,
    datadir=str(settings.flowledger_data_dir / "faust" / (WORKER_ID if ROLE == "all" else f"{WORKER_ID}-{ROLE}")),
)


class RoutedTable(faust.Table[bytes, bytes]):
    """A table that says itself which changelog partition a key goes to.

    Faust takes it from the event being processed, which a batch of events
    from several partitions (``take_events``) or a timer does not have.
    """

    def __init__(self, *args: Any, route: Callable[[bytes], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.route = route

    def partition_for_key(self, key: Any) -> int:
        return self.route(key)


def routed_table(name: str, partitions: int, route: Callable[[bytes], int]) -> Any:
    table = RoutedTable(
        app, name=name, default=None, key_type=bytes, value_type=bytes, partitions=partitions,
        beacon=app.tables.beacon, route=route,
    )  # fmt: skip
    return app.tables.add(table)


# Agents (imported for their registration side effect).
from streams import ingest_stats  # noqa: E402,F401

if RUNS_EXECUTOR:
    from streams import executor  # noqa: F401
if RUNS_MONITOR:
    from streams import alerts, metrics, recovery  # noqa: F401

"""The ``flowledger`` command line."""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from flowledger.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flowledger", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars (they are drawn only when stderr is a terminal)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the embedded stack in the foreground")
    up.add_argument("--demo", action="store_true", help="also start sandbox services and run demo workflows")
    demo = sub.add_parser("demo", help="define demo workflows and run them continuously")
    demo.add_argument("--api", required=True)
    demo.add_argument("--sandbox", required=True)
    demo.add_argument("--runs-per-s", type=float, default=1.0)
    sub.add_parser("init", help="create topics and apply ClickHouse migrations, then exit")
    sub.add_parser("serve", help="run the API (and, by default, the projector)")
    worker = sub.add_parser("worker", help="run a Faust worker")
    worker.add_argument(
        "--role", choices=("all", "executor", "monitor"), default=None,
        help="executor: run workflows; monitor: metrics, anomalies and ingest counts; all (default): both",
    )  # fmt: skip
    sub.add_parser("projector", help="run the projector alone (for a ClickHouse server)")
    produce = sub.add_parser("produce", help="validate a JSON Lines file of events and publish it")
    produce.add_argument("file", type=Path)
    produce.add_argument("--skip-invalid", action="store_true", help="publish the valid lines anyway")
    replay = sub.add_parser("replay", help="rebuild every projection from the durable record")
    replay.add_argument("--source", choices=("auto", "archive", "kafka"), default="auto")
    schemas_cmd = sub.add_parser("schemas", help="the event contract")
    schemas_sub = schemas_cmd.add_subparsers(dest="schemas_command", required=True)
    export = schemas_sub.add_parser("export", help="write one JSON Schema file per record type")
    export.add_argument("dir", type=Path)
    bench = sub.add_parser("bench", help="benchmarks against an embedded stack of their own")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    ingest = bench_sub.add_parser("ingest", help="produce -> Kafka -> ClickHouse -> API")
    ingest.add_argument("--events", type=int, default=200_000)
    ingest.add_argument("--samples", type=int, default=200, help="runs probed for visibility")
    ingest.add_argument("--rate", type=float, default=0.0, help="events/s to produce at (0: unlimited)")
    execution = bench_sub.add_parser("execution", help="the executor against sandbox services at zero latency")
    execution.add_argument("--runs", type=int, default=2000)
    execution.add_argument("--rate", type=float, default=200.0, help="runs started per second (0: all at once)")
    execution.add_argument(
        "--workers", choices=("split", "all"), default="split",
        help="split (default, as `flowledger up`): executor and monitor workers in two processes; all: one process",
    )  # fmt: skip
    metrics = bench_sub.add_parser("metrics", help="step results -> metric windows and anomaly detectors")
    metrics.add_argument("--events", type=int, default=200_000)
    metrics.add_argument("--span-min", type=float, default=30.0, help="minutes of event time the events cover")
    metrics.add_argument("--per-run-messages", action="store_true",
                         help="send each run as its own message instead of grouping records by partition")  # fmt: skip
    alerts = bench_sub.add_parser("alerts", help="first failing step -> alert notification received")
    alerts.add_argument("--alerts", type=int, default=20)
    alerts.add_argument("--window-s", type=float, default=60.0, help="metric window length")
    alerts.add_argument("--condition", default="error_rate > 0.1", help="the rule's condition (default: the built-in)")
    alerts.add_argument(
        "--range-s", type=float, default=None, help="the rule's own range (default: the metric window, as built in)"
    )
    alerts.add_argument(
        "--burst-per-s", type=float, default=0.0,
        help="failing runs per second added to a workflow's traffic (default 0: its runs start failing instead)",
    )  # fmt: skip
    alerts.add_argument("--keep-logs", type=Path, default=None, help="copy the API's and workers' logs here")
    broker = bench_sub.add_parser("broker", help="the embedded broker's fetch cost as a partition's log grows")
    broker.add_argument("--batches", type=int, default=20_000)
    broker.add_argument("--step", type=int, default=10_000)
    broker.add_argument("--per-batch", type=int, default=3, help="records per batch")
    broker.add_argument("--poll-s", type=float, default=10.0, help="seconds per fetch setting")
    generation = bench_sub.add_parser(
        "generation", help="sentences -> workflow definitions, in process and via the API"
    )
    generation.add_argument("--sentences", type=int, default=500, help="recipe texts of the development set to use")
    recovery = bench_sub.add_parser("recovery", help="sandbox faults -> sessions -> automatic recovery")
    recovery.add_argument("--faults", type=Path, required=True, help="fault schedule (the sandbox's format)")
    recovery.add_argument("--runs", type=int, default=300)
    recovery.add_argument("--rate", type=float, default=10.0, help="runs started per second")
    optimization = bench_sub.add_parser(
        "optimization", help="recorded runs -> recommendations -> the optimized versions run and measured"
    )
    optimization.add_argument("--runs", type=int, default=40, help="runs of each version of each workflow")
    optimization.add_argument("--rate", type=float, default=8.0, help="runs started per second")
    optimization.add_argument(
        "--independent-latency", action="store_true",
        help="every call draws its own latency (default: the same call takes as long in both versions)",
    )  # fmt: skip
    dashboard = bench_sub.add_parser(
        "dashboard", help="the dashboard in headless Chromium on the demo stack: first paint, live update latency"
    )
    dashboard.add_argument("--samples", type=int, default=10, help="page loads, and runs produced while one is open")
    dashboard.add_argument("--screenshots", type=Path, default=None, help="also save the documentation's screenshots")
    dashboard.add_argument("--warmup-s", type=float, default=0.0, help="seconds of demo traffic before measuring")
    sandbox = sub.add_parser("sandbox", help="a local HTTP server answering as any catalog service")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=5070)
    sandbox.add_argument("--faults", type=Path, default=None, help="JSON fault schedule file")
    sandbox.add_argument("--latency", default="trace", help="trace | zero | fixed:MS")
    sandbox.add_argument("--seed", type=int, default=None)
    sandbox.add_argument(
        "--deterministic",
        action="store_true",
        help="the same call (service, action, body) takes as long and answers the same id",
    )
    from flowledger.detect import add_parsers as add_detection_parsers
    from flowledger.nab import add_parser as add_anomaly_parser

    add_anomaly_parser(sub)
    evaluate = sub.add_parser("eval", help="score a component against a labelled set")
    evaluations = evaluate.add_subparsers(dest="eval_command", required=True)  # each verb sets run_eval
    from flowledger.eval_errors import add_parser as add_eval_errors_parser

    add_eval_errors_parser(evaluations)
    add_detection_parsers(sub, evaluations)

    args = parser.parse_args(argv)
    from flowledger import progress

    progress.configure(enabled=not args.no_progress)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    handler = COMMANDS[args.command]
    from projections.errors import ProjectionError

    try:
        return handler(args)
    except (ProjectionError, RuntimeError, ValueError, OSError) as exc:  # OSError: an input file missing
        print(f"flowledger {args.command}: {exc}", file=sys.stderr)
        return 1


def cmd_up(args: argparse.Namespace) -> int:
    from flowledger.stack import up

    return up(Settings(), demo=args.demo)


def cmd_demo(args: argparse.Namespace) -> int:
    import os

    from flowledger.demo import run_demo

    key = os.environ.get("FLOWLEDGER_DEMO_KEY", "")
    asyncio.run(run_demo(args.api, key, args.sandbox, runs_per_s=args.runs_per_s))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from flowledger.broker import ensure_topics
    from projections.migrations import migrate
    from projections.warehouse import Warehouse

    settings = Settings()
    created = asyncio.run(ensure_topics(settings.bootstrap))
    applied = migrate(Warehouse(settings.warehouse_url))
    print(f"topics created: {created or 'none'}; migrations applied: {applied or 'none'}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from api.server import serve
    from flowledger.procs import tune_gc_for_throughput

    settings = Settings()
    tune_gc_for_throughput()
    serve(settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import os

    if args.role:  # read by streams.app when it builds the app
        os.environ["FLOWLEDGER_WORKER_ROLE"] = args.role
    from streams.app import MONITOR_NICE, ROLE, app

    if ROLE == "monitor":
        os.nice(MONITOR_NICE)
    from flowledger.procs import tune_gc_for_throughput

    tune_gc_for_throughput()

    app.conf.datadir.mkdir(parents=True, exist_ok=True)
    sys.argv = ["flowledger-worker", "worker", "--loglevel", "warn", "--without-web"]
    app.main()
    return 0


def cmd_projector(args: argparse.Namespace) -> int:
    import signal

    from flowledger.procs import tune_gc_for_throughput
    from projections.migrations import migrate
    from projections.projector import Projector
    from projections.warehouse import Warehouse

    settings = Settings()
    warehouse = Warehouse(settings.warehouse_url)
    migrate(warehouse)
    tune_gc_for_throughput()

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await Projector(
            settings.bootstrap,
            warehouse,
            group_id=settings.flowledger_projector_group,
            workers=settings.flowledger_projector_workers,
            max_records=settings.flowledger_projector_max_records,
        ).run(stopping)

    asyncio.run(run())
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from flowledger.produce import produce_file

    return asyncio.run(produce_file(Settings().bootstrap, args.file, skip_invalid=args.skip_invalid))


def cmd_replay(args: argparse.Namespace) -> int:
    from flowledger import progress
    from projections import replay
    from projections.warehouse import Warehouse

    settings = Settings()
    warehouse = Warehouse(settings.warehouse_url)
    source = args.source
    if source == "auto":
        holds = settings.kafka_bootstrap_servers and asyncio.run(replay.kafka_holds_whole_log(settings.bootstrap))
        source = "kafka" if holds else "archive"
    with progress.bar(f"replay from {source}", unit="msg" if source == "kafka" else "table") as shown:

        def advance(done: int, total: int | None) -> None:
            shown.total = total
            shown.update(done - shown.n)

        if source == "kafka":
            count = asyncio.run(replay.replay_from_kafka(warehouse, settings.bootstrap, on_progress=advance))
        else:
            count = replay.replay_from_archive(warehouse, on_progress=advance)
    print(f"replayed {count} records from {source}")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    import orjson

    from schemas.registry import json_schemas

    args.dir.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (args.dir / f"{name}.schema.json").write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2))
    print(f"wrote {len(json_schemas())} schemas to {args.dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "execution":
        from flowledger.bench_execution import bench_execution

        return bench_execution(runs=args.runs, rate=args.rate, workers=args.workers)
    if args.bench_command == "metrics":
        from flowledger.bench_metrics import bench_metrics

        return bench_metrics(events=args.events, span_min=args.span_min, per_run=args.per_run_messages)
    if args.bench_command == "alerts":
        from flowledger.bench_alerts import bench_alerts

        return bench_alerts(
            alerts=args.alerts, window_s=args.window_s, condition=args.condition, range_s=args.range_s,
            burst_per_s=args.burst_per_s, keep_logs=args.keep_logs,
        )  # fmt: skip
    if args.bench_command == "broker":
        from flowledger.bench_broker import bench_broker

        return bench_broker(batches=args.batches, step=args.step, per_batch=args.per_batch, poll_s=args.poll_s)
    if args.bench_command == "recovery":
        from flowledger.bench_recovery import bench_recovery

        return bench_recovery(faults_file=args.faults, runs=args.runs, rate=args.rate)
    if args.bench_command == "optimization":
        from flowledger.bench_optimization import bench_optimization

        return bench_optimization(runs=args.runs, rate=args.rate, independent=args.independent_latency)
    if args.bench_command == "generation":
        from flowledger.bench_generation import bench_generation

        return bench_generation(sentences=args.sentences)
    if args.bench_command == "dashboard":
        from flowledger.bench_dashboard import bench_dashboard

        return bench_dashboard(samples=args.samples, screenshots=args.screenshots, warmup_s=args.warmup_s)
    from flowledger.bench import bench_ingest

    return bench_ingest(events=args.events, samples=args.samples, rate=args.rate)


def cmd_anomaly(args: argparse.Namespace) -> int:
    from flowledger.nab import dispatch

    return dispatch(args)


def cmd_eval(args: argparse.Namespace) -> int:
    result: int = args.run_eval(args)
    return result


def cmd_sandbox(args: argparse.Namespace) -> int:
    from flowledger.sandbox import run_sandbox

    run_sandbox(args.host, args.port, args.faults, args.latency, args.seed, args.deterministic)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from flowledger.detect import cmd_detect as detect

    return detect(args)


COMMANDS = {
    "up": cmd_up, "demo": cmd_demo, "init": cmd_init, "serve": cmd_serve, "worker": cmd_worker,
    "projector": cmd_projector, "produce": cmd_produce, "replay": cmd_replay,
    "schemas": cmd_schemas, "bench": cmd_bench, "sandbox": cmd_sandbox, "anomaly": cmd_anomaly,
    "detect": cmd_detect, "eval": cmd_eval,
}  # fmt: skip

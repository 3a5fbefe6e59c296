"""Child-process hygiene: children die with their parent, none is left behind."""

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def child_preexec() -> None:
    """In the child, before exec: ask the kernel to SIGTERM us when the parent dies.

    This covers the case no signal handler can: the parent being SIGKILLed.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def terminate(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    """SIGTERM, wait, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def flowledger_command(*args: str) -> list[str]:
    """Run a flowledger subcommand with this interpreter (works inside any venv)."""
    return [sys.executable, "-m", "flowledger", *args]


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def stack_env(bootstrap: str, data_dir: str | Path, api_port: int, api_keys: str, **overrides: str) -> dict[str, str]:
    """The environment of a benchmark's own stack: its broker, an embedded ClickHouse in ``data_dir``, its API port."""
    return child_env(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        CLICKHOUSE_URL=f"chdb://{Path(data_dir) / 'clickhouse'}",
        FLOWLEDGER_DATA_DIR=str(data_dir),
        PYTHON_API_PORT=str(api_port),
        FLOWLEDGER_API_KEYS=api_keys,
        **overrides,
    )


def tune_gc_for_throughput() -> None:
    """Make the cyclic GC cheap for a process that allocates many short-lived objects.

    Decoding a batch allocates hundreds of thousands of small objects; with the
    default gen-0 threshold (700) the collector runs constantly and rescans the
    long-lived startup heap each time. Freezing that heap and raising the
    thresholds cut decode time 2-3x in our measurements (``flowledger bench
    ingest``); reference cycles are still collected, only less often.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


def spawn(
    args: list[str], env: Mapping[str, str], *, log: Path | None = None, own_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start a child that dies with us; its output goes to ``log`` (else ours)."""
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            args, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if out else None,
            start_new_session=own_session, preexec_fn=child_preexec,
        )  # fmt: skip
    finally:
        if out:
            out.close()


def wait_http(url: str, timeout_s: float = 60, watch: Mapping[str, subprocess.Popen[bytes]] | None = None) -> None:
    """Wait until ``url`` answers 2xx; raise RuntimeError if a watched process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, proc in (watch or {}).items():
            if proc.poll() is not None:
                raise RuntimeError(f"flowledger {name} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URL we built
                if 200 <= response.status < 300:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of children included), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

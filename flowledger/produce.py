"""``flowledger produce FILE.jsonl``: validate every line, then publish."""

import sys
from pathlib import Path

import orjson

from flowledger import progress
from flowledger.client import Producer
from schemas.envelope import Envelope
from schemas.registry import validate_item


def read_records(path: Path) -> tuple[list[Envelope], list[str]]:
    """Records from a JSON Lines file, and one message per bad line (1-based)."""
    records: list[Envelope] = []
    errors: list[str] = []
    with path.open("rb") as lines, progress.bar(f"validate {path.name}", path.stat().st_size, "B") as shown:
        for number, line in enumerate(lines, start=1):
            shown.update(len(line))
            if not line.strip():
                continue
            try:
                outcome = validate_item(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                errors.append(f"{path}:{number}: not JSON: {exc}")
                continue
            if isinstance(outcome, Envelope):
                records.append(outcome)
            else:
                errors.append(f"{path}:{number}: {outcome}")
    return records, errors


async def produce_file(bootstrap: str, path: Path, *, skip_invalid: bool = False) -> int:
    records, errors = read_records(path)
    for error in errors[:50]:
        print(error, file=sys.stderr)
    if errors and not skip_invalid:
        print(f"{len(errors)} invalid lines; nothing published (use --skip-invalid)", file=sys.stderr)
        return 2
    async with Producer(bootstrap) as producer:
        messages = await producer.pack(records)
        with progress.bar("publish", len(messages), "msg") as shown:
            await producer.send_messages(messages, on_sent=lambda _index: shown.update())
    print(f"published {len(records)} records" + (f", skipped {len(errors)} invalid" if errors else ""))
    return 0

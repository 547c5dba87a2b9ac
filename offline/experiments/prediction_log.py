"""Reading the prediction log the service writes (:mod:`service.experiments.records`).

A log is a folder of JSON Lines files (every ``predictions-*.jsonl``, oldest name first) or a
Redis stream read with XRANGE in chunks. Records of an unknown ``kind`` and keys this reader does
not know are skipped, as the contract asks; a line that is not a JSON object with the fields of
its kind (a torn last line of a file being written, say) is counted as malformed and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from service.experiments import records


class PredictionLogError(ValueError):
    """The log cannot be read as a prediction log (no files, a wrong stream)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One arm's answer to one request (``shadow``: ranked, never shown)."""

    request_id: str
    user_id: str
    ts: float
    experiment: str | None
    experiment_version: int | None
    arm: str | None
    shadow: bool
    bundle_version: str
    items: tuple[str, ...]  # position 0 first
    scores: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a user did with one item of an answer."""

    request_id: str
    item_id: str
    outcome: str  # one of records.OUTCOMES
    ts: float


LogRecord = Prediction | Outcome


@dataclass
class ReadCounts:
    """What the reader met besides the records it returned."""

    predictions: int = 0
    outcomes: int = 0
    unknown_kinds: int = 0
    malformed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def parse_record(raw: Any, counts: ReadCounts) -> LogRecord | None:
    """The record of one decoded JSON value, or None (counted) when it is none we use."""
    if not isinstance(raw, dict):
        counts.malformed += 1
        return None
    kind = raw.get("kind")
    try:
        if kind == "prediction":
            found: LogRecord = _prediction(raw)
            counts.predictions += 1
            return found
        if kind == "outcome":
            found = _outcome(raw)
            counts.outcomes += 1
            return found
    except (KeyError, TypeError, ValueError):
        counts.malformed += 1
        return None
    counts.unknown_kinds += 1
    return None


def _prediction(raw: dict[str, Any]) -> Prediction:
    items = tuple(str(item) for item in raw["items"])
    scores = tuple(float(score) for score in raw["scores"])
    if len(items) != len(scores):
        raise ValueError("items and scores differ in length")
    version = raw.get("experiment_version")
    return Prediction(
        request_id=str(raw["request_id"]),
        user_id=str(raw["user_id"]),
        ts=float(raw["ts"]),
        experiment=_optional_str(raw.get("experiment")),
        experiment_version=None if version is None else int(version),
        arm=_optional_str(raw.get("arm")),
        shadow=bool(raw.get("shadow", False)),
        bundle_version=str(raw.get("bundle_version", "")),
        items=items,
        scores=scores,
    )


def _outcome(raw: dict[str, Any]) -> Outcome:
    outcome = str(raw["outcome"])
    if outcome not in records.OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    return Outcome(
        request_id=str(raw["request_id"]),
        item_id=str(raw["item_id"]),
        outcome=outcome,
        ts=float(raw.get("ts", 0.0)),
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def log_files(folder: Path) -> list[Path]:
    """The log's files, oldest name first; a folder without one is refused."""
    if not folder.is_dir():
        raise FileNotFoundError(2, "no such folder", str(folder))
    files = sorted(folder.glob(records.LOG_FILE_GLOB), key=lambda path: path.name)
    if not files:
        raise PredictionLogError(
            f"{folder} holds no {records.LOG_FILE_GLOB} file; name the folder the service "
            "writes its prediction log to (REASEQ_PREDICTION_LOG_DIR)"
        )
    return files


def _decoded_lines(lines: Iterable[str | bytes], counts: ReadCounts) -> Iterator[LogRecord]:
    for line in lines:
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            counts.malformed += 1
            continue
        found = parse_record(raw, counts)
        if found is not None:
            yield found


def read_folder(folder: Path, counts: ReadCounts | None = None) -> Iterator[LogRecord]:
    """Every record of the log files under ``folder``, file by file in name order."""
    counts = counts if counts is not None else ReadCounts()
    for path in log_files(folder):
        with path.open("rb") as lines:
            yield from _decoded_lines(lines, counts)


def read_stream(
    redis_url: str,
    counts: ReadCounts | None = None,
    *,
    stream: str = records.PREDICTION_STREAM,
    chunk: int = 1000,
) -> Iterator[LogRecord]:
    """Every record of the Redis stream, oldest entry first, ``chunk`` entries per XRANGE."""
    import redis

    counts = counts if counts is not None else ReadCounts()
    client = redis.Redis.from_url(redis_url)
    try:
        if not client.exists(stream):
            raise PredictionLogError(
                f"{redis_url} holds no stream {stream!r}; name the Redis the service writes "
                "its prediction log to"
            )
        start = "-"
        while True:
            entries: list[Any] = client.xrange(stream, min=start, max="+", count=chunk) or []
            for _, fields in entries:
                value = (fields or {}).get(records.STREAM_FIELD.encode())
                if value is None:
                    counts.malformed += 1
                    continue
                yield from _decoded_lines([value], counts)
            if len(entries) < chunk:
                return
            start = _after(entries[-1][0])
    finally:
        client.close()


def _after(entry_id: bytes | str) -> str:
    """The smallest stream ID after ``entry_id`` (XRANGE's exclusive ``(`` needs Redis 6.2)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    millis, _, sequence = text.partition("-")
    return f"{millis}-{int(sequence or 0) + 1}"

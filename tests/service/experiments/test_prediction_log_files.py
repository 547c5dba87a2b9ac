"""The prediction log's JSON Lines files: every record once and in order, rotation by size with a
bounded number of this process's files, a full queue that drops instead of blocking, a close
that flushes, write errors that are counted without stopping the writer."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from service.app import create_app
from service.experiments.prediction_log import (
    PredictionLogUnavailable,
    open_prediction_log,
    should_log,
)
from service.experiments.prediction_log.files import FileLog, RotatingFiles, open_file_log
from service.experiments.records import LOG_FILE_GLOB
from service.observability.prediction_log_metrics import PredictionLogMetrics
from service.settings import Settings
from service.settings_errors import setting_error_lines
from service.stores.config import EmbeddedStoreConfig
from tests.support.log_records import mixed, outcome, prediction
from tests.support.waiting import wait_for

pytestmark = pytest.mark.anyio

MIB = 2**20
FILE_NAME = re.compile(rf"^predictions-\d{{8}}T\d{{12}}-{os.getpid()}\.jsonl$")


def read_log(folder: Path) -> list[dict[str, Any]]:
    """Every record of every log file in ``folder``, files by name (oldest first)."""
    return [
        orjson.loads(line)
        for path in sorted(folder.glob(LOG_FILE_GLOB))
        for line in path.read_bytes().splitlines()
    ]


def sample(metrics_registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = metrics_registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class HeldSink:
    """A sink whose writes wait until released; ``entered`` is set once a write has begun."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lines: list[dict[str, Any]] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.entered.set()
        self.release.wait()
        self.lines += [orjson.loads(line) for line in data.splitlines()]

    def close(self) -> None:
        self.closed = True


class FlakySink:
    """A sink that fails while ``failing``, counting every attempt."""

    def __init__(self) -> None:
        self.failing = True
        self.attempts = 0
        self.lines: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.attempts += 1
        if self.failing:
            raise OSError(28, "No space left on device")
        self.lines += [orjson.loads(line) for line in data.splitlines()]

    def close(self) -> None:
        pass


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> PredictionLogMetrics:
    return PredictionLogMetrics(registry)


async def test_every_record_is_written_once_in_order(
    tmp_path: Path, metrics: PredictionLogMetrics, registry: CollectorRegistry
) -> None:
    folder = tmp_path / "new" / "predictions"  # created
    records = mixed(3000)
    log = open_file_log(folder, 64 * MIB, 16, 10_000, metrics)
    assert all(log.record(record) for record in records)
    await log.close()
    assert read_log(folder) == records
    assert [p.name for p in folder.iterdir() if not FILE_NAME.match(p.name)] == []
    assert sample(registry, "reaseq_prediction_log_records_total", kind="outcome") == 1000
    assert sample(registry, "reaseq_prediction_log_records_total", kind="prediction") == 2000
    assert sample(registry, "reaseq_prediction_log_dropped_total") == 0
    assert sample(registry, "reaseq_prediction_log_queue_depth") == 0


def _own_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(LOG_FILE_GLOB) if FILE_NAME.match(p.name))


def test_rotation_by_size_keeps_this_process_newest_files_only(tmp_path: Path) -> None:
    # Another worker's file in the shared folder: never this process's to remove.
    other = tmp_path / "predictions-20250101T000000000000-1.jsonl"
    other.write_bytes(orjson.dumps(outcome(-1)) + b"\n")
    lines = [orjson.dumps(prediction(n)) + b"\n" for n in range(60)]
    files = RotatingFiles(tmp_path, max_bytes=1024, max_files=3)
    for line in lines:
        files.write(line)
    files.close()
    own = _own_files(tmp_path)
    assert own == files.files and len(own) == 3
    assert other.exists()
    sizes = [path.stat().st_size for path in own]
    assert all(1024 <= size < 1024 + len(lines[0]) + 8 for size in sizes[:-1])
    kept = b"".join(path.read_bytes() for path in own)
    assert kept == b"".join(lines[len(lines) - kept.count(b"\n") :])


async def test_the_log_rotates_its_files_as_it_writes(
    tmp_path: Path, metrics: PredictionLogMetrics, registry: CollectorRegistry
) -> None:
    records = [prediction(n) for n in range(30)]
    log = open_file_log(tmp_path, 1024, 3, 100, metrics)
    for n, record in enumerate(records, 1):
        log.record(record)
        await wait_for(
            lambda n=n: (
                sample(registry, "reaseq_prediction_log_records_total", kind="prediction") == n
            ),
            f"record {n} written",
        )
    await log.close()
    assert len(_own_files(tmp_path)) == 3
    kept = read_log(tmp_path)
    assert 0 < len(kept) < len(records)
    assert kept == records[len(records) - len(kept) :]


def test_file_names_sort_in_the_order_the_files_were_opened(tmp_path: Path) -> None:
    frozen = datetime(2025, 6, 1, 12, 0, 0, 999_999, tzinfo=UTC)
    files = RotatingFiles(tmp_path, max_bytes=1, max_files=10, clock=lambda: frozen)
    for n in range(5):
        files.write(orjson.dumps(outcome(n)) + b"\n")
    files.close()
    names = [path.name for path in files.files]
    assert len(set(names)) == 5 and names == sorted(names)
    assert names[0] == f"predictions-20250601T120000999999-{os.getpid()}.jsonl"
    assert all(FILE_NAME.match(name) for name in names)
    assert [orjson.loads(p.read_bytes())["request_id"] for p in files.files] == [
        f"r{n}" for n in range(5)
    ]


async def test_a_full_queue_drops_and_counts_without_blocking(
    metrics: PredictionLogMetrics, registry: CollectorRegistry
) -> None:
    sink = HeldSink()
    log = FileLog(sink, queue_size=4, metrics=metrics)
    assert log.record(prediction(0))
    await wait_for(sink.entered.is_set, "the writer took the first record")
    # The writer is held inside its write: the queue fills up, then drops.
    accepted = [log.record(prediction(n)) for n in range(1, 11)]
    assert accepted == [True] * 4 + [False] * 6
    assert sample(registry, "reaseq_prediction_log_dropped_total") == 6
    assert sample(registry, "reaseq_prediction_log_queue_depth") == 4
    sink.release.set()
    await log.close()
    assert [line["request_id"] for line in sink.lines] == [f"r{n}" for n in range(5)]
    assert sink.closed


async def test_close_flushes_what_is_queued(metrics: PredictionLogMetrics) -> None:
    sink = HeldSink()
    log = FileLog(sink, queue_size=100, metrics=metrics)
    log.record(outcome(0))
    await wait_for(sink.entered.is_set, "the writer took the first record")
    for n in range(1, 50):
        log.record(outcome(n))
    closing = asyncio.create_task(log.close())
    await asyncio.sleep(0)
    sink.release.set()
    await closing
    assert [line["request_id"] for line in sink.lines] == [f"r{n}" for n in range(50)]
    assert not log.record(outcome(50)), "a closed log takes no record"


async def test_close_gives_up_on_a_stuck_writer_and_counts_the_rest(
    metrics: PredictionLogMetrics, registry: CollectorRegistry
) -> None:
    sink = HeldSink()
    log = FileLog(sink, queue_size=100, metrics=metrics, close_timeout_s=0.05)
    log.record(outcome(0))
    await wait_for(sink.entered.is_set, "the writer took the first record")
    for n in range(1, 8):
        log.record(outcome(n))
    await log.close()  # returns although the writer never finishes its write
    assert sample(registry, "reaseq_prediction_log_dropped_total") == 7
    sink.release.set()


async def test_write_errors_are_counted_logged_once_and_the_writer_goes_on(
    metrics: PredictionLogMetrics, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FlakySink()
    log = FileLog(sink, queue_size=100, metrics=metrics)
    with caplog.at_level(logging.WARNING, logger="service.experiments.prediction_log"):
        for n in range(3):
            log.record(outcome(n))
            await wait_for(lambda n=n: sink.attempts == n + 1, f"write attempt {n + 1}")
        sink.failing = False
        log.record(outcome(3))
        await log.close()
    assert [line["request_id"] for line in sink.lines] == ["r3"]
    assert sample(registry, "reaseq_prediction_log_write_errors_total") == 3
    assert sample(registry, "reaseq_prediction_log_dropped_total") == 3
    assert sample(registry, "reaseq_prediction_log_records_total", kind="outcome") == 1
    messages = [record.getMessage() for record in caplog.records]
    assert sum("a write failed" in m for m in messages) == 1
    assert sum("writing again after 3 failed writes" in m for m in messages) == 1


async def test_a_record_that_cannot_be_encoded_is_dropped_alone(
    tmp_path: Path, metrics: PredictionLogMetrics, registry: CollectorRegistry
) -> None:
    log = open_file_log(tmp_path, MIB, 4, 100, metrics)
    broken = dict(prediction(1), context={1: object()})
    log.record(prediction(0))
    log.record(broken)  # type: ignore[arg-type]
    log.record(prediction(2))
    await log.close()
    assert [r["request_id"] for r in read_log(tmp_path)] == ["r0", "r2"]
    assert sample(registry, "reaseq_prediction_log_dropped_total") == 1


async def test_an_unwritable_folder_fails_at_open_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings = Settings(prediction_log_dir=blocker / "predictions")
    with pytest.raises(PredictionLogUnavailable, match="REASEQ_PREDICTION_LOG_DIR=") as caught:
        open_prediction_log(settings, EmbeddedStoreConfig())
    assert str(blocker / "predictions") in str(caught.value)


async def test_off_opens_no_log(tmp_path: Path) -> None:
    settings = Settings(prediction_log="off", prediction_log_dir=tmp_path / "never")
    assert open_prediction_log(settings, EmbeddedStoreConfig()) is None
    assert not (tmp_path / "never").exists()


async def test_auto_with_the_embedded_store_writes_files(tmp_path: Path) -> None:
    settings = Settings(prediction_log_dir=tmp_path, prediction_log_queue=5)
    log = open_prediction_log(settings, EmbeddedStoreConfig())
    assert isinstance(log, FileLog)
    log.record(outcome(0))
    await log.close()
    assert read_log(tmp_path) == [outcome(0)]


@pytest.mark.parametrize(
    ("mode", "running", "logged"),
    [
        ("experiment", True, True),
        ("experiment", False, False),
        ("always", False, True),
        ("always", True, True),
        ("off", True, False),
    ],
)
def test_should_log(mode: Any, running: bool, logged: bool) -> None:
    assert should_log(Settings(prediction_log=mode), running) is logged


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            {"REASEQ_PREDICTION_LOG": "sometimes"},
            "REASEQ_PREDICTION_LOG='sometimes' is not valid: Input should be 'experiment', "
            "'always' or 'off'",
        ),
        ({"REASEQ_PREDICTION_LOG_QUEUE": "0"}, "REASEQ_PREDICTION_LOG_QUEUE='0' is not valid"),
        (
            {"REASEQ_PREDICTION_LOG_SINK": "redis"},
            "REASEQ_PREDICTION_LOG_SINK=redis writes to the store's Redis: set REASEQ_STORE=redis",
        ),
    ],
)
def test_bad_settings_are_said_as_one_line_per_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], line: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    [said] = setting_error_lines(caught.value, Settings)
    assert said.startswith(line)


def test_settings_defaults() -> None:
    settings = Settings()
    assert (settings.prediction_log, settings.prediction_log_sink) == ("experiment", "auto")
    assert settings.prediction_log_dir == Path("var/predictions")
    assert settings.prediction_log_max_bytes == 64 * MIB
    assert settings.prediction_log_max_files == 16
    assert settings.prediction_log_queue == 10_000
    assert settings.prediction_stream_maxlen == 1_000_000


async def test_the_service_refuses_to_start_on_an_unwritable_folder(
    tmp_path: Path, make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    app = create_app(make_settings(prediction_log_dir=blocker / "predictions"))
    with pytest.raises(PredictionLogUnavailable, match="REASEQ_PREDICTION_LOG_DIR="):
        async with app.router.lifespan_context(app):
            pass
    assert any("refusing to start" in record.getMessage() for record in caplog.records)


async def test_records_that_arrive_together_are_written_in_one_write(
    metrics: PredictionLogMetrics,
) -> None:
    """The writer lets records gather after the first wakes it: one write, not one per answer."""
    sink = FlakySink()
    sink.failing = False
    log = FileLog(sink, queue_size=100, metrics=metrics, linger_s=0.5)
    log.record(outcome(0))
    await asyncio.sleep(0.05)  # the writer is awake: without lingering it would write one
    for n in range(1, 20):
        log.record(outcome(n))
    await wait_for(lambda: len(sink.lines) == 20, "the records were written")
    assert sink.attempts == 1
    await log.close()

"""Reading a prediction log (files in name order, a Redis stream) and joining its answers with
outcomes by request ID."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import redis

from offline.experiments import PredictionLogError, ReadCounts, join, read_folder, read_stream
from service.experiments import records
from tests.offline.experiments.logs import outcome, prediction, write_log


def test_rotated_files_are_read_oldest_name_first(tmp_path: Path) -> None:
    first, second = write_log(
        tmp_path,
        [prediction("r1", "u1", ["i1"], "a"), prediction("r2", "u2", ["i2"], "b")],
        files=2,
    )
    # A retried answer in the newer file: the first one read wins, so order matters.
    with second.open("a") as log:
        log.write(json.dumps(prediction("r1", "u1", ["i9"], "b")) + "\n")
    (tmp_path / "other.jsonl").write_text(json.dumps(prediction("r0", "u0", ["i0"])) + "\n")
    found = list(read_folder(tmp_path))
    assert [r.request_id for r in found] == ["r1", "r2", "r1"]
    joined = join(found)
    assert [(a.prediction.request_id, a.arm) for a in joined.answers] == [("r1", "a"), ("r2", "b")]
    assert joined.counts.duplicate_answers == 1
    assert first.name < second.name


def test_unknown_kinds_keys_and_broken_lines_are_skipped(tmp_path: Path) -> None:
    future = prediction("r1", "u1", ["i1", "i2"]) | {"new_key": {"nested": 1}}
    lines: list[Mapping[str, object]] = [
        future,
        {"kind": "exposure", "request_id": "r1"},
        {"kind": "outcome", "request_id": "r1"},  # no item: malformed
        outcome("r1", "i2") | {"extra": True},
    ]
    (path,) = write_log(tmp_path, lines)
    with path.open("a") as log:
        log.write('{"kind": "prediction", "request_id": ')  # a torn last line
    counts = ReadCounts()
    found = list(read_folder(tmp_path, counts))
    assert counts.as_dict() == {"predictions": 1, "outcomes": 1, "unknown_kinds": 1, "malformed": 2}
    (answer,) = join(found).answers
    assert answer.prediction.items == ("i1", "i2") and answer.clicked == (1,)


def test_outcomes_join_by_request_and_unmatched_ones_are_counted(tmp_path: Path) -> None:
    lines = [
        outcome("r1", "i2"),  # before its answer: the join waits for the whole log
        prediction("r1", "u1", ["i1", "i2", "i3"]),
        prediction("r2", "u2", ["i4"]),
        outcome("r1", "i2"),  # the same click again: counted once
        outcome("r1", "i3", "order"),
        outcome("r1", "i7"),  # not in the answer's items
        outcome("r9", "i1"),  # no such request
        prediction("r1", "u1", ["i3", "i1"], "shadow", shadow=True),
    ]
    write_log(tmp_path, lines)
    joined = join(read_folder(tmp_path))
    first, second = joined.answers
    assert (first.clicked, first.ordered) == ((1,), (2,))
    assert (second.clicked, second.ordered) == ((), ())
    counts = joined.counts.as_dict()
    assert counts["unmatched_outcomes"] == 2
    assert counts["outcomes_item_not_shown"] == 1 and counts["outcomes_unknown_request"] == 1
    assert counts["duplicate_outcomes"] == 1
    (pair,) = joined.shadows
    assert pair.served.request_id == "r1" and pair.shadow.arm == "shadow"
    assert joined.arm_bundles() == {"control": "bundle-control", "shadow": "bundle-shadow"}


def test_a_folder_without_log_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PredictionLogError, match=r"predictions-\*\.jsonl"):
        list(read_folder(tmp_path))
    with pytest.raises(FileNotFoundError):
        list(read_folder(tmp_path / "missing"))


def test_the_stream_is_read_in_chunks_in_order(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    lines: list[Mapping[str, object]] = [prediction(f"r{i}", f"u{i}", [f"i{i}"]) for i in range(5)]
    lines += [outcome("r3", "i3"), {"kind": "exposure"}]
    for line in lines:
        client.xadd(records.PREDICTION_STREAM, {records.STREAM_FIELD: json.dumps(line)})
    client.xadd(records.PREDICTION_STREAM, {"other": "field"})
    counts = ReadCounts()
    found = list(read_stream(redis_url, counts, chunk=2))
    assert [r.request_id for r in found] == ["r0", "r1", "r2", "r3", "r4", "r3"]
    assert counts.as_dict() == {"predictions": 5, "outcomes": 1, "unknown_kinds": 1, "malformed": 1}
    assert [a.clicked for a in join(found).answers] == [(), (), (), (0,), ()]
    client.close()


def test_a_missing_stream_is_refused(redis_url: str) -> None:
    with pytest.raises(PredictionLogError, match="no stream"):
        list(read_stream(redis_url))

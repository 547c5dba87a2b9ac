"""The CPU attention benchmark's harness at tiny shapes: every kernel timed in both regimes, and
the findings read off the figures."""

from __future__ import annotations

from typer.testing import CliRunner

from bench.cpu_attention import MIB, Timing, app, findings, measure, render
from bench.workloads import Workload

TINY = Workload("tiny", candidates=40, real=30, generated=4)


def test_every_chunk_size_and_the_numpy_fallback_are_timed_in_both_regimes() -> None:
    chunks = (0, 4096 / MIB)  # one call, and chunks of a few candidates
    timings = measure(TINY, repeats=3, idle_s=0.001, chunks_mib=chunks)
    assert [(t.kernel, t.chunk_mib) for t in timings] == [
        ("onnxruntime", 0),
        ("onnxruntime", 4096 / MIB),
        ("numpy", None),
    ]
    assert all(t.back_to_back_ms > 0 and t.idle_between_ms > 0 for t in timings)
    assert [t.calls for t in timings] == [1, 40 // 8, 1]  # 4 KiB: the 8-candidate minimum
    text = render(timings, idle_ms=1.0, repeats=3, machine="a test machine")
    assert "| tiny | numpy | — |" in text and "| tiny | onnxruntime | whole |" in text
    assert "a test machine" in text


def test_the_findings_name_the_fastest_and_compare_the_default_with_one_call() -> None:
    timings = [
        Timing("W2", "onnxruntime", 0, 7.0, 12.0),
        Timing("W2", "onnxruntime", 2, 7.5, 9.0),
        Timing("W2", "onnxruntime", 4, 7.8, 9.6, calls=8),
        Timing("W2", "numpy", None, 15.0, 16.0),
    ]
    (line,) = findings(timings, idle_ms=30)
    assert "one call 12.00 ms (back to back 7.00 ms)" in line
    assert "fastest 2 MiB chunks at 9.00 ms" in line
    assert "the default (4 MiB) 9.60 ms, -20% against one call (8 calls" in line
    one_call = [Timing("W1", "onnxruntime", 0, 1.0, 1.4), Timing("W1", "onnxruntime", 4, 1.0, 1.5)]
    assert "the same work, so the difference is the run's noise" in findings(one_call, 30)[0]


def test_an_unknown_workload_is_refused_in_one_line() -> None:
    result = CliRunner().invoke(app, ["--workloads", "W9"])
    assert result.exit_code == 2
    assert "unknown workloads ['W9']" in result.output

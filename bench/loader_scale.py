"""``python -m bench.loader_scale``: how fast the Taobao loader reads a log of ``--rows`` rows, and
in how much memory, into the "Loaders" section of docs/SCALE.md.

A ``UserBehavior.csv`` is generated with NumPy a million rows at a time (the public log's shape:
about 100 rows a user and 24 an item, items of skewed popularity, 440 items a category, its mix of
behaviours over its nine days), then loaded in a fresh child process per measurement, so that the
child's peak resident memory (``VmHWM``, else ``ru_maxrss``) is that load's: reading the log
(Arrow blocks into the columnar log), then the whole canonical dataset (reading, sampled
negatives, catalogue); with ``--sample-users``, both again for that sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import typer

app = typer.Typer(add_completion=False, help=__doc__)

START_TS = 1_511_539_200  # 2017-11-25, the first day of the public log
DAYS = 9
BEHAVIOURS = ("pv", "fav", "cart", "buy")
SHARES = (0.895, 0.029, 0.055, 0.021)  # the public log's mix
SECTION = "## Loaders"
_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("category_id", pa.int64()),
        ("behavior_type", pa.string()),
        ("timestamp", pa.int64()),
    ]
)
_CHILD = """
import json, sys
from bench.loader_scale import measure
print(json.dumps(measure(*json.loads(sys.argv[1]))))
"""


def write_user_behavior(path: Path, rows: int, seed: int = 0, chunk_rows: int = 1_000_000) -> None:
    """A ``UserBehavior.csv`` of ``rows`` rows, written ``chunk_rows`` at a time."""
    users, items = max(rows // 100, 1), max(rows // 24, 1)
    categories = max(items // 440, 1)
    rng = np.random.default_rng(seed)
    kinds = pa.array(BEHAVIOURS)
    options = pcsv.WriteOptions(include_header=False, quoting_style="none")
    with pcsv.CSVWriter(str(path), _SCHEMA, write_options=options) as writer:
        for start in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - start)
            item = 1 + (items * rng.random(n) ** 2).astype(np.int64)  # popular items first
            columns = {
                "user_id": 1 + rng.integers(0, users, n),
                "item_id": item,
                "category_id": 1 + item * 7919 % categories,
                "behavior_type": kinds.take(pa.array(rng.choice(len(BEHAVIOURS), n, p=SHARES))),
                "timestamp": START_TS + rng.integers(0, DAYS * 86_400, n),
            }
            writer.write_table(pa.table(columns, schema=_SCHEMA))


def measure(
    directory: str, dataset: bool, sample_users: int | None, block_bytes: int
) -> dict[str, Any]:
    """In the child process: one load, its seconds and this process's peak memory."""
    from offline.data.loaders import LoaderConfig
    from offline.data.loaders.taobao import load_taobao, read_taobao

    config = LoaderConfig(sample_users=sample_users, block_bytes=block_bytes)
    at_start = peak_mib()
    started = time.perf_counter()
    if dataset:
        loaded = load_taobao(Path(directory), config)
        found = {"kept": loaded.meta["interactions"], "users": len(loaded.user_ids)}
        found |= {"items": len(loaded.catalogue), "impressions": len(loaded.impressions)}
    else:
        log = read_taobao(Path(directory), config)
        found = {"log_mib": log.nbytes / 2**20, "batches": log.batches}
        columns = log.finish()  # the log as the dataset's assembly takes it
        found |= {"kept": len(columns.ts), "users": len(columns.user_ids)}
        found |= {"items": len(columns.item_ids)}
    seconds = time.perf_counter() - started
    return found | {"seconds": seconds, "start_mib": at_start, "peak_mib": peak_mib()}


def peak_mib() -> float:
    """This process's peak resident memory: Linux's ``VmHWM``, which is this program's alone
    (``ru_maxrss`` also counts the parent's memory at the time it started this process), else
    ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run(
    directory: Path, dataset: bool, sample_users: int | None, block_bytes: int
) -> dict[str, Any]:
    """One measurement in a fresh process; a failed one (killed for memory) says how it ended."""
    args = json.dumps([str(directory), dataset, sample_users, block_bytes])
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {
            "failed": f"exit {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}"
        }
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _row(name: str, rows: int, found: dict[str, Any]) -> str:
    if "failed" in found:
        return f"| {name} | {rows:,} | did not finish ({found['failed']}) |" + " |" * 8
    own = found["peak_mib"] - found["start_mib"]
    impressions = f"{found['impressions']:,}" if "impressions" in found else "–"
    log = f"{found['log_mib']:,.0f}" if "log_mib" in found else "–"
    cells = [
        name,
        f"{rows:,}",
        f"{found['kept']:,}",
        f"{found['users']:,}",
        f"{found['items']:,}",
        impressions,
        f"{found['seconds']:.1f}",
        f"{rows / found['seconds']:,.0f}",
        f"{found['peak_mib']:,.0f}",
        f"{own * 2**20 / rows:.0f}",
        log,
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    lines = [
        SECTION,
        "",
        f"Regenerate with `{report['command']}`; {report['machine']}; pyarrow "
        f"{report['pyarrow']}; load average {report['load_average']:.1f} when it started; "
        f"{report['generated_at']}.",
        "",
        f"**These figures are at {rows:,} rows, the row count this run used** (the public Taobao "
        "log has 100M: `--rows` defaults to that; the figures here were not measured at that "
        "size unless the line above says so). The file is a generated `UserBehavior.csv` "
        f"({report['file_mib']:,.0f} MiB) with the public log's shape. Each line is a fresh "
        "child process: `peak RSS` is its peak resident memory (`VmHWM`; Python, NumPy and "
        "pyarrow included); "
        "`bytes/row` is its growth over what it held at the start, per row of the file; it "
        "includes the fixed working memory of one block (Arrow's buffers, its memory pool, the "
        "block's string columns) and the ID tables, so it is not a cost per row alone. `log` is "
        "the bytes of the columnar log itself, 19 a row. "
        f"Block size {report['block_bytes'] >> 20} MiB (`LoaderConfig.block_bytes`).",
        "",
        "| load | rows in file | rows kept | users | items | impressions | seconds | rows/s "
        "| peak RSS (MiB) | bytes/row | log (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_row(name, rows, found) for name, found in report["runs"].items()]
    lines += [
        "",
        "`read`: `read_taobao`, the file into the columnar log (int32 user and item codes, int64 "
        "time, label, event, request flag; each distinct ID string once). `dataset`: "
        "`load_taobao`, the log and then the canonical dataset: sampled non-clicks for every "
        "page view (four by default), behaviours, catalogue. The dataset, not the reading, "
        "is what needs most memory; `--sample-users` keeps that in bounds, choosing the users "
        "while the file streams.",
        "",
    ]
    return "\n".join(lines)


def write_section(docs: Path, section: str, title: str = SECTION) -> Path:
    """Replace one section of docs/SCALE.md, from its ``title`` line to the next ``## `` heading
    (the Loaders section by default; bench/offline_scale.py writes its own), keeping the others;
    add it if the file has none (or start the file with it)."""
    path = docs / "SCALE.md"
    text = path.read_text() if path.exists() else "# Scale\n\n"
    heading = f"{title}\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        rest = text[end + 1 :] if end >= 0 else ""
        text = text[:start] + section.rstrip("\n") + ("\n\n" + rest if rest else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text)
    return path


@app.command()
def main(
    rows: Annotated[int, typer.Option(min=1, help="Rows of the generated log.")] = 100_000_000,
    sample_users: Annotated[
        int | None, typer.Option(min=1, help="Also load a sample of this many users.")
    ] = None,
    dataset: Annotated[
        bool, typer.Option(help="Also build the whole canonical dataset, not only the log.")
    ] = True,
    block_mib: Annotated[int, typer.Option(min=1, help="LoaderConfig.block_bytes, MiB.")] = 16,
    work_dir: Annotated[Path, typer.Option(help="Where the generated log goes.")] = Path(
        "var/loader_scale"
    ),
    docs_dir: Annotated[Path, typer.Option(help="Where SCALE.md is.")] = Path("docs"),
    seed: int = 0,
) -> None:
    """Generate the log (unless already there), load it, write the Loaders section."""
    directory = work_dir / f"taobao-{rows}-{seed}"
    path = directory / "UserBehavior.csv"
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_user_behavior(path.with_suffix(".partial"), rows, seed)
        path.with_suffix(".partial").rename(path)
        typer.echo(f"generated {rows:,} rows in {time.perf_counter() - started:.0f} s -> {path}")
    block_bytes, load_average = block_mib << 20, os.getloadavg()[0]
    runs: dict[str, dict[str, Any]] = {}
    plan: list[tuple[str, bool, int | None]] = [("read", False, None)]
    if dataset:
        plan.append(("dataset", True, None))
    if sample_users is not None:  # a sample's dataset is small even where the whole one is not
        plan += [
            (f"{name}, {sample_users:,} users", whole, sample_users)
            for name, whole in (("read", False), ("dataset", True))
        ]
    for name, whole, sample in plan:
        runs[name] = _run(directory, whole, sample, block_bytes)
        typer.echo(f"{name}: {runs[name]}")
    from model_export.report import machine_description  # heavy: after the children ran

    args = f"--rows {rows}" + (f" --sample-users {sample_users}" if sample_users else "")
    args += "" if dataset else " --no-dataset"
    args += "" if block_mib == 16 else f" --block-mib {block_mib}"
    report = {
        "command": f"python -m bench.loader_scale {args}",
        "machine": machine_description(),
        "pyarrow": pa.__version__,
        "load_average": load_average,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
        "file_mib": path.stat().st_size / 2**20,
        "block_bytes": block_bytes,
        "runs": runs,
    }
    typer.echo(f"-> {write_section(docs_dir, markdown(report))}")


if __name__ == "__main__":
    app()

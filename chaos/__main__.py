"""``python -m chaos``: run the chaos scenario and write the reliability report."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from chaos.bundles import ChaosBundles, prepare, reaseq
from chaos.report import machine, phase_figures, to_markdown, version_flip
from chaos.scenario import ADMIN_KEY, Load, Scenario, Timing, rank_bodies, scrape
from chaos.stack import RedisServer, Service
from chaos.traffic import EventWriter, Outcome, RankTraffic
from chaos.verify import events_found
from offline.data.canonical import Dataset

COMMAND = "make chaos"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Short phases, for development.")
    parser.add_argument("--rate", type=float, default=40.0, help="Rank requests per second.")
    parser.add_argument("--events-rate", type=float, default=10.0, help="Event writes per second.")
    parser.add_argument("--workdir", type=Path, default=Path("var/chaos"))
    parser.add_argument("--demo-bundles", type=Path, default=Path("bundles"))
    parser.add_argument("--demo-dir", type=Path, default=Path("var/demo"))
    parser.add_argument("--report", type=Path, default=None, help="Markdown report to write.")
    parser.add_argument("--json", type=Path, default=None, help="JSON figures to write.")
    return parser.parse_args()


def _publish(bundles: ChaosBundles, demo_dir: Path, url: str, workdir: Path) -> None:
    """The first version active, the second staged (its keys written, the pointer unmoved), and
    every user's generated behaviours written by the nearline job, as a deployment runs it."""
    data = demo_dir / "data"
    common = ["publish", "--store", "redis", "--redis-url", url, "--data", str(data)]
    reaseq(*common, "--bundles", str(bundles.root), "--version", bundles.first)
    reaseq(*common, "--bundles", str(bundles.root), "--version", bundles.second, "--no-activate")
    reaseq(
        "gbr", "generate", "--data", str(data), "--checkpoint", str(demo_dir / "gbr"),
        "--bundles", str(bundles.root), "--version", bundles.first, "--store", "redis",
        "--redis-url", url, "--state", str(workdir / "gbr_state.npz"), "--no-incremental",
    )  # fmt: skip


def _service_env(bundles: ChaosBundles, redis_url: str) -> dict[str, str]:
    return {
        "REASEQ_STORE": "redis",
        "REASEQ_REDIS_URL": redis_url,
        "REASEQ_BUNDLE_ROOT": str(bundles.root),
        "REASEQ_ADMIN_API_KEY": ADMIN_KEY,
        "REASEQ_BUNDLE_WATCH_INTERVAL_S": "1",
        "REASEQ_LOG_LEVEL": "warning",
        "REASEQ_ACCESS_LOG": "false",
    }


def _users_and_items(data: Path, bundle_dir: Path) -> tuple[list[str], list[str]]:
    """Users with behaviours (so a normal answer is not ``unknown_user``) and catalogue items."""
    dataset = Dataset.load(data)
    active = np.unique(dataset.behaviours.user_idx)
    users = [str(u) for u in dataset.user_ids[active]]
    items = [str(i) for i in np.load(bundle_dir / "item_ids.npy")]
    return users, items


def main() -> None:
    args = _arguments()
    timing = Timing.quick() if args.quick else Timing()
    outputs = args.workdir if args.quick else Path("docs")
    report = args.report or outputs / "RELIABILITY.md"
    figures = args.json or outputs / "reliability.json"
    load = Load(rate_rps=args.rate, events_rps=args.events_rate)
    bundles = prepare(args.workdir / "bundles", args.demo_bundles, args.demo_dir)
    shutil.rmtree(args.workdir / "redis", ignore_errors=True)
    redis = RedisServer(args.workdir / "redis")
    redis.start()
    service = Service(_service_env(bundles, redis.url), args.workdir / "service.log")
    try:
        _publish(bundles, args.demo_dir, redis.url, args.workdir)
        service.start()
        result = asyncio.run(_run(args, timing, load, bundles, redis, service))
    finally:
        service.stop()
        redis.kill()
    figures.parent.mkdir(parents=True, exist_ok=True)
    figures.write_text(json.dumps(result, indent=2) + "\n")
    report.write_text(to_markdown(result, COMMAND))
    print(f"wrote {report} and {figures}")


async def _run(
    args: argparse.Namespace,
    timing: Timing,
    load: Load,
    bundles: ChaosBundles,
    redis: RedisServer,
    service: Service,
) -> dict[str, Any]:
    users, items = _users_and_items(args.demo_dir / "data", bundles.root / bundles.first)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    host = machine()
    origin = time.monotonic()
    rank = RankTraffic(
        f"{service.url}/v1/rank", rank_bodies(users, items, load), load.rate_rps, origin
    )
    events = EventWriter(service.url, ADMIN_KEY, users[: load.event_users], items, load.events_rps)
    scenario = Scenario(redis, service, bundles, timing, rank, events)
    await scenario.run()
    with redis.client() as client:
        found = events_found(client, events.acknowledged)
    metrics = scrape(
        service.url,
        ("reaseq_bundle_activations_total", "reaseq_bundle_reloads_total",
         "reaseq_store_breaker_transitions_total"),
    )  # fmt: skip
    return _result(scenario, rank, events, found, metrics, bundles, load, host, started_at)


def _result(
    scenario: Scenario,
    rank: RankTraffic,
    events: EventWriter,
    found: int,
    metrics: dict[str, float],
    bundles: ChaosBundles,
    load: Load,
    host: dict[str, Any],
    started_at: str,
) -> dict[str, Any]:
    answers = rank.answers
    phases = [phase_figures(phase, answers) for phase in scenario.phases]
    totals = {"sent": len(answers)} | {
        outcome.value: sum(1 for a in answers if a.outcome is outcome) for outcome in Outcome
    }
    flip = version_flip(answers, bundles.first, bundles.second)
    return {
        "command": COMMAND,
        "started_at": started_at,
        "machine": host,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "load": load.__dict__,
        "bundles": {"first": bundles.first, "second": bundles.second, "corrupt": bundles.corrupt},
        "totals": totals,
        "phases": phases,
        "version_flip": flip,
        "events": {
            "attempts": events.attempts,
            "refused": events.refused,
            "acknowledged": len(events.acknowledged),
            "unacknowledged": events.unacknowledged,
            "found": found,
        },
        "metrics": metrics,
        "fault_notes": _fault_notes(phases, flip, metrics),
    }


def _fault_notes(
    phases: list[dict[str, Any]], flip: dict[str, Any], metrics: dict[str, float]
) -> list[str]:
    by_name = {p["phase"]: p for p in phases}
    notes = []
    outage = by_name.get("redis_outage")
    if outage:
        # The reasons as measured: an unreachable store and a slow one read differently.
        reasons = [r for r in outage.get("degraded_by_reason", {}) if r.startswith("store_")]
        named = ", ".join(f"`{r}`" for r in reasons) or "by the store"
        notes.append(
            f"**redis_outage**: Redis SIGKILLed, restarted {outage['down_s']} s later from its "
            f"append-only file. Rank requests were answered degraded ({named}, from the "
            "bundle's item table) while the circuit breaker was open; event writes got 503 and "
            "were sent again."
        )
    kill = by_name.get("worker_kill")
    if kill:
        notes.append(
            f"**worker_kill**: worker {kill['killed_pid']} SIGKILLed; uvicorn's supervisor had "
            f"spawned a new worker process {kill['worker_respawned_after_s']} s later (which then "
            "loads, verifies and warms the bundle before it accepts connections). Requests in "
            "flight on the killed worker failed; the other worker kept answering."
        )
    activation = by_name.get("bundle_activation")
    if activation:
        answer = activation["activation"]
        notes.append(
            f"**bundle_activation**: `POST /v1/admin/bundle/activate` answered "
            f"{answer['status']} ({json.dumps(answer['body'])}) on one worker; the other "
            "followed the active version in Redis. The first answer from the new version was "
            f"sent at {flip['first_new_s']} s, the last from the old one at "
            f"{flip['last_old_s']} s: {flip['old_after_first_new']} answers from the old version "
            "were sent after the first from the new one (any such come from the worker that had "
            "not yet polled the pointer; the scenario does not see which worker answered)."
        )
    corrupt = by_name.get("corrupt_bundle")
    if corrupt:
        answer = corrupt["admin_activation"]
        watched = metrics.get(
            'reaseq_bundle_activations_total{result="corrupt",trigger="watch"}', 0.0
        )
        notes.append(
            f"**corrupt_bundle**: the admin activation of a copy with one flipped byte answered "
            f"{answer['status']} `{answer['body'].get('code')}` ({answer['body'].get('detail')}); "
            f"then the active version in Redis named it ({corrupt['pointer']}): the workers "
            f"refused it {watched:.0f} times in all (`reaseq_bundle_activations_total"
            '{trigger="watch",result="corrupt"}`) and kept serving.'
        )
    return notes


if __name__ == "__main__":
    main()

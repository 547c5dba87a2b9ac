"""Locust users of the ranking service and the load shape, chosen by command-line options.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 --load-shape step ...

``python -m loadtest`` runs it headless with reports; this file also works in Locust's web UI.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment

from loadtest.shapes import LoadShape, plan
from loadtest.traffic import Traffic, TrafficConfig

RANK_PATH = "/v1/rank"
#: Load shedding: the caller is told to retry after ``Retry-After`` seconds.
SHED_STATUS = 429
MAX_BACKOFF_S = 5.0
_user_seeds = itertools.count()
_traffic: Traffic | None = None


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("ranking traffic")
    group.add_argument("--bundle-root", default="bundles", help="Bundle folder (with CURRENT).")
    group.add_argument(
        "--users-path", default="var/demo/users.npz", help="Embedded user snapshot; '' = u<n>."
    )
    group.add_argument("--user-count", type=int, default=1000, help="u<n> users without one.")
    group.add_argument("--zipf-exponent", type=float, default=1.1, help="User popularity skew.")
    group.add_argument(
        "--candidates", default="uniform:50:500", help="fixed:N, uniform:LO:HI, lognormal:MED:SD"
    )
    group.add_argument("--recent-events-ratio", type=float, default=0.2)
    group.add_argument("--explain-ratio", type=float, default=0.05)
    group.add_argument("--top-k", type=int, default=100, help="0 = all.")
    group.add_argument("--think-time-ms", type=float, default=0.0, help="Pause between requests.")
    group.add_argument("--traffic-seed", type=int, default=0)
    group.add_argument(
        "--load-shape", choices=[s.value for s in LoadShape], default=LoadShape.soak.value
    )


def options_of(environment: Environment) -> Any:
    """The parsed command line (always there when Locust runs this file)."""
    if environment.parsed_options is None:
        raise RuntimeError("run this file with the locust command: it reads its options")
    return environment.parsed_options


def traffic(environment: Environment) -> Traffic:
    """The process's traffic model, loaded once from the options."""
    global _traffic
    if _traffic is None:
        options = options_of(environment)
        _traffic = Traffic.load(
            TrafficConfig(
                bundle_root=Path(options.bundle_root),
                users_path=Path(options.users_path) if options.users_path else None,
                user_count=options.user_count,
                zipf_exponent=options.zipf_exponent,
                candidates=options.candidates,
                recent_events_ratio=options.recent_events_ratio,
                explain_ratio=options.explain_ratio,
                top_k=options.top_k or None,
            )
        )
    return _traffic


def _seconds(header: str | None) -> float:
    try:
        return max(0.0, float(header or 0))
    except ValueError:
        return 0.0


class RankingCaller(FastHttpUser):
    """An upstream service calling ``/v1/rank`` in a closed loop."""

    #: Seconds the service asked this caller to wait after a 429 (Retry-After), taken once.
    backoff_s = 0.0

    def wait_time(self) -> float:
        backoff, self.backoff_s = self.backoff_s, 0.0
        return float(options_of(self.environment).think_time_ms) / 1000.0 + backoff

    def on_start(self) -> None:
        self.traffic = traffic(self.environment)
        seed = int(options_of(self.environment).traffic_seed)
        self.rng = np.random.default_rng([seed, next(_user_seeds)])

    @task
    def rank(self) -> None:
        body = self.traffic.request(self.rng)
        name = f"{RANK_PATH} explain" if body.get("explain") else RANK_PATH
        with self.client.post(RANK_PATH, json=body, name=name, catch_response=True) as response:
            if response.status_code == SHED_STATUS:
                # A well-behaved upstream waits as the service asks before calling again.
                self.backoff_s = min(_seconds(response.headers.get("Retry-After")), MAX_BACKOFF_S)
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
                return
            items = response.json().get("items")
            if not isinstance(items, list) or not items:
                response.failure("no items in the ranking")


class SelectedShape(LoadTestShape):
    """The shape named by ``--load-shape``, over ``--run-time`` with ``-u`` users at ``-r``/s."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None, "Locust sets the runner before the first tick"
        options = options_of(self.runner.environment)
        duration = float(options.run_time or 60)
        return plan(
            options.load_shape, self.get_run_time(), duration, options.num_users, options.spawn_rate
        )

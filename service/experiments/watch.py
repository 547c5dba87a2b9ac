"""A watcher that applies the experiment configuration in ``REASEQ_EXPERIMENT_FILE``.

The file holds the body of ``PUT /v1/admin/experiment`` as JSON. Mounted from a ConfigMap (or
copied by any rollout tool), it reaches every replica: each worker reads it at start-up, before
it reports ready, then every ``REASEQ_EXPERIMENT_WATCH_INTERVAL_S``. A configuration is applied
when the file's content changed and its version is higher than the running experiment's. A file
that cannot be read or parsed, or that breaks a rule, is logged with the reason (once per
content) and the running experiment is kept; a missing file changes nothing either. A bundle not
found (not copied here yet) or a store that cannot be checked is tried again at the next poll;
any other refusal waits for the file to change.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pydantic import ValidationError

from service import tasks
from service.errors import BundleNotFoundError, ServiceError, StoreError
from service.experiments.config import EXPERIMENT_ADAPTER, ExperimentConfig
from service.experiments.experiment import ExperimentSource
from service.experiments.lifecycle import ExperimentLifecycle

log = logging.getLogger(__name__)


class ConfigStarter:
    """Starts a configuration that came from a file, as the admin endpoint would, and logs a
    refusal once per reason (``name`` says where it came from in the log lines)."""

    def __init__(
        self,
        lifecycle: ExperimentLifecycle,
        source: ExperimentSource,
        name: str,
        kept_until: str,
    ) -> None:
        self._lifecycle = lifecycle
        self._source = source
        self._name = name
        self._kept_until = kept_until
        self._last_refusal: str | None = None

    async def start(self, config: ExperimentConfig) -> bool:
        """Start ``config`` unless it runs already; never raises. False when it may work later
        and should be tried again (a bundle being copied, a store that comes back)."""
        running = self._lifecycle.running
        if running is not None and running.config == config:
            return True
        try:
            await self._lifecycle.start(config, self._source)
        except (BundleNotFoundError, StoreError) as error:
            self._refused(error, "tried again at the next poll")
            return False
        except ServiceError as error:
            self._refused(error, f"kept until {self._kept_until}")
        except Exception:
            log.exception("applying %s failed", self._name)
        else:
            self._last_refusal = None
        return True

    def _refused(self, error: ServiceError, outlook: str) -> None:
        if error.message != self._last_refusal:
            log.warning(
                "%s is not applied (%s; the running experiment is kept): %s",
                self._name,
                outlook,
                error.message,
            )
            self._last_refusal = error.message


class ExperimentFileWatcher:
    """Reads the experiment file every ``interval_s`` (0: at :meth:`poll` calls only) and
    applies it."""

    def __init__(self, path: Path, lifecycle: ExperimentLifecycle, interval_s: float) -> None:
        self._path = path
        self._lifecycle = lifecycle
        self._interval_s = interval_s
        self._seen: bytes | None = None
        self._unreadable: str | None = None
        self._starter = ConfigStarter(
            lifecycle, ExperimentSource.FILE, f"experiment file {path}", "the file changes"
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self._interval_s > 0:
            self._task = asyncio.create_task(
                tasks.every(self._interval_s, self.poll), name="experiment-watch"
            )

    async def poll(self) -> None:
        """Read the file once and apply it when it changed; never raises."""
        content = await self._read()
        if content is None or content == self._seen:
            return
        self._seen = content
        try:
            config = EXPERIMENT_ADAPTER.validate_json(content)
        except ValidationError as error:
            log.warning(
                "experiment file %s is not applied, the running experiment is kept: %s",
                self._path,
                _reasons(error),
            )
            return
        if not await self._starter.start(config):
            self._seen = None  # read it again at the next poll

    async def _read(self) -> bytes | None:
        try:
            content = await asyncio.to_thread(self._path.read_bytes)
        except OSError as error:
            reason = f"{type(error).__name__}: {error.strerror or error}"
            if reason != self._unreadable:
                log.warning(
                    "experiment file %s cannot be read (%s): the running experiment is kept",
                    self._path,
                    reason,
                )
                self._unreadable = reason
            return None
        self._unreadable = None
        return content

    async def close(self) -> None:
        await tasks.stop(self._task)
        self._task = None


def _reasons(error: ValidationError) -> str:
    """Pydantic's field errors on one line: ``arms: the arms' shares must add up to 1…``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in each['loc']) or 'file'}: {each['msg']}"
        for each in error.errors()
    )

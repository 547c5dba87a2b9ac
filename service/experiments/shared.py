"""The admin endpoint's experiment, shared by the workers of one service.

``reaseq serve`` with several workers gives them a folder of their own
(:mod:`service.worker_state`). The worker that answers ``PUT`` or ``DELETE
/v1/admin/experiment`` makes the change on itself first, as with one worker (a refusal changes
nothing anywhere), then writes what it did to the folder's experiment file. Every worker reads
the file before it reports ready (a worker that restarts comes back with the experiment) and
then every :data:`POLL_INTERVAL_S`, and makes a change it has not seen yet: starts the
configuration, or stops its experiment.

Admin changes take a lock on the folder (``flock``) for their whole length, and each first
applies the file's last change: they happen one after the other, in the file's order, so a
configuration not newer than one another worker started is refused (409) as on that worker.
Polls take no lock: the file is replaced whole (written aside, then renamed).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import ValidationError

from service import tasks
from service.experiments.config import EXPERIMENT_ADAPTER, ExperimentConfig
from service.experiments.experiment import ExperimentSource, RunningExperiment
from service.experiments.lifecycle import ExperimentLifecycle
from service.experiments.watch import ConfigStarter
from service.worker_state import EXPERIMENT_FILE, replace_file

log = logging.getLogger(__name__)

LOCK_FILE = "experiment.lock"
POLL_INTERVAL_S = 0.5
#: How often a change waiting for another worker's lock tries again.
_LOCK_RETRY_S = 0.02


class SharedExperiment:
    """Starts and stops the experiment for the admin endpoint, on this worker and, through
    the folder, on the others; :meth:`poll` applies the others' changes here."""

    def __init__(
        self, folder: Path, lifecycle: ExperimentLifecycle, interval_s: float = POLL_INTERVAL_S
    ) -> None:
        self._path = folder / EXPERIMENT_FILE
        self._lock_path = folder / LOCK_FILE
        self._lifecycle = lifecycle
        self._interval_s = interval_s
        self._seen: bytes | None = None
        self._starter = ConfigStarter(
            lifecycle,
            ExperimentSource.ADMIN,
            "another worker's experiment change",
            "the next change",
        )
        self._task: asyncio.Task[None] | None = None

    def start_polling(self) -> None:
        if self._task is None and self._interval_s > 0:
            self._task = asyncio.create_task(
                tasks.every(self._interval_s, self.poll), name="shared-experiment"
            )

    async def close(self) -> None:
        await tasks.stop(self._task)
        self._task = None

    async def start(self, config: ExperimentConfig) -> RunningExperiment:
        """Start ``config`` here (raising as :meth:`ExperimentLifecycle.start` does), then tell
        the other workers."""
        async with self._locked():
            await self.poll()
            running = await self._lifecycle.start(config, ExperimentSource.ADMIN)
            await self._publish(config)
            return running

    async def stop(self) -> RunningExperiment | None:
        """Stop the experiment here, then tell the other workers."""
        async with self._locked():
            await self.poll()
            stopped = await self._lifecycle.stop()
            await self._publish(None)
            return stopped

    async def poll(self) -> None:
        """Apply the file's change when it is new to this worker; never raises."""
        try:
            content = await asyncio.to_thread(self._path.read_bytes)
        except FileNotFoundError:
            return
        except OSError as error:
            log.warning("cannot read the workers' experiment file %s: %s", self._path, error)
            return
        if content == self._seen:
            return
        self._seen = content
        try:
            config = _config_of(content)
        except (ValueError, ValidationError) as error:
            log.warning("the workers' experiment file %s is not applied: %s", self._path, error)
            return
        if config is None:
            if self._lifecycle.running is not None:
                await self._lifecycle.stop()
        elif not await self._starter.start(config):
            self._seen = None  # read it again at the next poll

    async def _publish(self, config: ExperimentConfig | None) -> None:
        body = {
            "change": uuid.uuid4().hex,  # a repeated change is still a change to the others
            "config": None if config is None else config.model_dump(mode="json"),
        }
        content = json.dumps(body).encode()
        await asyncio.to_thread(replace_file, self._path, content)
        self._seen = content

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """The folder's lock, waited for without blocking the event loop (and cancellable)."""
        descriptor = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_LOCK_RETRY_S)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock


def _config_of(content: bytes) -> ExperimentConfig | None:
    body = json.loads(content)
    if not isinstance(body, dict) or "config" not in body:
        raise ValueError("no config")
    config = body["config"]
    return None if config is None else EXPERIMENT_ADAPTER.validate_python(config)

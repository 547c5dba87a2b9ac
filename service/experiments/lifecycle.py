"""Starting, replacing and stopping the experiment of a worker.

Starting a configuration loads every bundle version its arms and shadows name, each once and
one after the other, exactly as a bundle activation does (:func:`load_bundle`: read, verify,
warm up; :func:`serve_checked`: open the store, check it holds the bundle's item vectors, score
a probe request), measuring the resident set around each. Only when all are ready is the new
:class:`RunningExperiment` swapped in, in one assignment. Anything that fails before leaves the
running state as it was (the bundles loaded so far are closed) and raises a domain error that
says why. A replaced or stopped experiment's bundles are retired: closed once the requests (and
shadow scorings) in flight on them are done, as after a bundle swap.

Changes run one at a time. A configuration replaces the running one only with a higher version.
"""

from __future__ import annotations

import asyncio
import logging

from service.bundles.lifecycle import load_bundle, serve_checked
from service.bundles.served import ServingParts
from service.errors import ServiceError, StaleExperimentVersion
from service.experiments.config import ExperimentConfig
from service.experiments.experiment import (
    ExperimentBundle,
    ExperimentServices,
    ExperimentSource,
    RunningExperiment,
)
from service.experiments.memory import BundleMemory, disk_bytes, growth, resident_bytes

log = logging.getLogger(__name__)


class ExperimentLifecycle:
    """Holds the running experiment (``running``, None when none runs) and changes it."""

    def __init__(self, parts: ServingParts, services: ExperimentServices) -> None:
        self._parts = parts
        self._services = services
        #: The shadow queue of every experiment of this worker (started with the runtime).
        self.shadows = services.shadows
        self._drain_timeout_s = parts.settings.bundle_drain_timeout_s
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        #: Read once per rank request: a plain attribute, replaced in one assignment.
        self.running: RunningExperiment | None = None

    async def start(self, config: ExperimentConfig, source: ExperimentSource) -> RunningExperiment:
        """Run ``config`` from now on, replacing the running experiment; raises a domain error
        (and keeps the running state) when its version is stale or a bundle cannot be served."""
        async with self._lock:
            current = self.running
            if current is not None and config.version <= current.config.version:
                raise StaleExperimentVersion(
                    f"experiment {config.name!r} version {config.version} is not higher than "
                    f"the running {current.name!r} version {current.config.version}: raise the "
                    "version to replace it"
                )
            started = asyncio.get_running_loop().time()
            try:
                bundles = await self._load(config)
            except ServiceError as error:
                # The file watcher logs its refusals itself, once per content of the file.
                if source is ExperimentSource.ADMIN:
                    log.warning(
                        "refused experiment %s version %d: %s", config.name, config.version, error
                    )
                raise
            experiment = RunningExperiment(config, bundles, self._services, source)
            self.running = experiment  # the swap: new requests take the new arms from here on
            if current is not None:
                self._retire(current)
            experiment.report_memory()
            log.info(
                "experiment %s version %d running (from %s): arms %s%s, loaded in %.2f s",
                config.name,
                config.version,
                source.value,
                ", ".join(f"{arm.name}={arm.bundle}@{arm.share:g}" for arm in config.arms),
                "".join(f", shadow {s.name}={s.bundle}" for s in config.shadows),
                asyncio.get_running_loop().time() - started,
                extra={"experiment": config.name, "experiment_version": config.version},
            )
            return experiment

    async def stop(self) -> RunningExperiment | None:
        """Stop the running experiment (every request goes back to the served bundle); returns
        it, or None when none ran."""
        async with self._lock:
            current = self.running
            if current is None:
                return None
            self.running = None
            self._retire(current)
            log.info("experiment %s version %d stopped", current.name, current.config.version)
            return current

    async def _load(self, config: ExperimentConfig) -> dict[str, ExperimentBundle]:
        """Every bundle version of ``config``, served and probed; closes those already loaded
        when one fails."""
        loaded: dict[str, ExperimentBundle] = {}
        try:
            for version in config.bundle_versions():
                before = resident_bytes()
                bundle = await load_bundle(self._parts, version)
                served = await serve_checked(bundle, self._parts)
                resident = growth(before, resident_bytes())
                disk = await asyncio.to_thread(disk_bytes, bundle.directory)
                loaded[version] = ExperimentBundle(served, BundleMemory(resident, disk))
        except BaseException:
            for each in loaded.values():
                await each.served.close()
            raise
        return loaded

    def _retire(self, experiment: RunningExperiment) -> None:
        for closing in experiment.retire(self._drain_timeout_s):
            task = asyncio.create_task(closing, name=f"retire-experiment-{experiment.name}")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        """Stop shadow scoring; close the running experiment's bundles, after retiring ones."""
        await self.shadows.close()
        async with self._lock:
            if self._retiring:
                await asyncio.gather(*self._retiring, return_exceptions=True)
            current, self.running = self.running, None
            if current is not None:
                await current.close()

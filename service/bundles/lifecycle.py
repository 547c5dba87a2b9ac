"""Bundle activation without a restart: load, verify, warm up, check against the store, swap.

An activation reads ``<bundle_root>/<version>/`` and verifies every checksum and graph signature
(in a thread: the event loop keeps serving), warms the graphs up, opens the store for the new
version and checks that the store holds its item vectors with its dimensions, then scores one
probe request end to end through a fresh micro-batcher. Only then is the new
:class:`ServedBundle` swapped in, in one assignment: requests that started on the old one finish
on it, and it is closed once they are done. Anything that fails before the swap leaves the
served bundle as it was and is answered with a domain error that says why.

Activations run one at a time. The previous version is remembered for a rollback (which loads
and verifies it again, like any activation). With the Redis store, an activation asked for by an
operator (admin, rollback) is also recorded as the active version there before the swap, so
that the other workers follow it (:mod:`service.bundles.watch`); if it cannot be recorded, nothing
is swapped.

:func:`load_bundle` and :func:`serve_checked` are the load-and-probe steps of an activation;
an experiment (:mod:`service.experiments.lifecycle`) loads its arms' bundles with them too.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from service.bundles.active_version import VersionPointer
from service.bundles.loaded import LoadedBundle
from service.bundles.served import ServedBundle, ServingParts, serve_bundle
from service.contracts.manifest import BundleIntegrityError, confined_bundle_dir
from service.errors import (
    BundleCorrupt,
    BundleIncompatible,
    BundleNotFoundError,
    NoPreviousBundle,
    ServiceError,
    StoreError,
    StoreUnavailable,
)
from service.observability.metrics import ServiceMetrics
from service.ranking import RankQuery
from service.stores import FetchQuery

log = logging.getLogger(__name__)

#: A bundle version names a folder under the bundle root: no separators, no leading dot.
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PROBE_USER = "__bundle_activation_probe__"
PROBE_ITEMS = 16
_PROBE_TIMEOUT_MS = 30_000


class ActivationTrigger(StrEnum):
    ADMIN = "admin"
    ROLLBACK = "rollback"
    WATCH = "watch"


class ActivationResult(StrEnum):
    SUCCESS = "success"
    UNCHANGED = "unchanged"
    NOT_FOUND = "not_found"
    CORRUPT = "corrupt"
    INCOMPATIBLE = "incompatible"
    STORE_UNAVAILABLE = "store_unavailable"
    ERROR = "error"


_RESULT_OF: tuple[tuple[type[ServiceError], ActivationResult], ...] = (
    (BundleNotFoundError, ActivationResult.NOT_FOUND),
    (BundleCorrupt, ActivationResult.CORRUPT),
    (BundleIncompatible, ActivationResult.INCOMPATIBLE),
    (StoreError, ActivationResult.STORE_UNAVAILABLE),
)


@dataclass(frozen=True)
class Activation:
    """What an activation did."""

    version: str
    previous_version: str | None
    changed: bool
    seconds: float


class BundleLifecycle:
    """Holds the served bundle; activates, rolls back and retires bundles."""

    def __init__(
        self,
        served: ServedBundle,
        parts: ServingParts,
        metrics: ServiceMetrics,
        on_swap: Callable[[ServedBundle], None] | None = None,
        pointer: VersionPointer | None = None,
    ) -> None:
        self._served = served
        self._pointer = pointer
        self._parts = parts
        self._metrics = metrics
        self._on_swap = on_swap
        self._previous: str | None = None
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def served(self) -> ServedBundle:
        return self._served

    @property
    def previous_version(self) -> str | None:
        return self._previous

    async def activate(self, version: str, trigger: ActivationTrigger) -> Activation:
        """Serve ``version`` from now on; raises a domain error (and keeps the served bundle)
        when it is missing, corrupt or does not fit the store."""
        async with self._lock:
            started = time.perf_counter()
            try:
                activation = await self._activate(version, trigger, started)
            except ServiceError as error:
                self._count(trigger, _result_of(error))
                log.warning("refused to activate bundle %s (%s): %s", version, trigger, error)
                raise
            except Exception:
                self._count(trigger, ActivationResult.ERROR)
                log.exception("activating bundle %s (%s) failed", version, trigger)
                raise
            result = ActivationResult.SUCCESS if activation.changed else ActivationResult.UNCHANGED
            self._count(trigger, result)
            return activation

    async def rollback(self) -> Activation:
        """Serve the previously served version again."""
        previous = self._previous
        if previous is None:
            raise NoPreviousBundle("no previous bundle to roll back to: none was activated")
        return await self.activate(previous, ActivationTrigger.ROLLBACK)

    async def _activate(
        self, version: str, trigger: ActivationTrigger, started: float
    ) -> Activation:
        current = self._served
        # An operator's choice is recorded for the fleet (the watcher only follows it).
        record = self._pointer is not None and trigger is not ActivationTrigger.WATCH
        if version == current.version:
            if record:
                await self._record(version)
            return Activation(version, self._previous, False, 0.0)
        bundle = await load_bundle(self._parts, version)
        served = await serve_checked(bundle, self._parts)
        if record:
            try:
                await self._record(version)
            except StoreUnavailable:
                await served.close()
                raise
        self._served = served  # the swap: new requests take the new bundle from here on
        self._previous = current.version
        self._metrics.bundle_served(version, previous=current.version)
        if self._on_swap is not None:
            self._on_swap(served)
        retiring = asyncio.create_task(
            current.retire(self._parts.settings.bundle_drain_timeout_s),
            name=f"retire-{current.version}",
        )
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)
        seconds = time.perf_counter() - started
        log.info("activated bundle %s (was %s) in %.2f s", version, current.version, seconds)
        return Activation(version, current.version, True, round(seconds, 3))

    async def _record(self, version: str) -> None:
        assert self._pointer is not None
        try:
            await self._pointer.write(version)
        except StoreUnavailable as error:
            raise StoreUnavailable(
                f"{error.message}; bundle {version} was not activated, so that every worker "
                "keeps following the same version"
            ) from error

    def _count(self, trigger: ActivationTrigger, result: ActivationResult) -> None:
        self._metrics.bundle_activations.labels(trigger=trigger.value, result=result.value).inc()
        if result is ActivationResult.SUCCESS:
            self._metrics.bundle_reloads.labels(result="success").inc()
        elif result is not ActivationResult.UNCHANGED:
            self._metrics.bundle_reloads.labels(result="failure").inc()

    async def close(self) -> None:
        """Close the served bundle, after any retiring ones."""
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        await self._served.close()


async def load_bundle(parts: ServingParts, version: str) -> LoadedBundle:
    """Read ``<bundle_root>/<version>/``, verify it and warm its graphs up, off the event loop;
    raises :class:`BundleNotFoundError` or :class:`BundleCorrupt` saying why not."""
    bundle_dir = _bundle_dir(parts.settings.bundle_root, version)
    try:
        bundle = await asyncio.to_thread(parts.load, bundle_dir)
        await asyncio.to_thread(bundle.warm_up)
    except BundleIntegrityError as error:
        raise BundleCorrupt(str(error)) from error
    except Exception as error:
        raise BundleCorrupt(f"bundle {version} cannot be loaded: {error}") from error
    if bundle.version != version:
        raise BundleCorrupt(
            f"folder {version} holds bundle {bundle.version} (manifest version): the folder "
            "must be named after the version it holds"
        )
    return bundle


async def serve_checked(bundle: LoadedBundle, parts: ServingParts) -> ServedBundle:
    """The bundle with its store and scoring threads, once it has scored a probe request;
    raises :class:`BundleIncompatible` or :class:`StoreUnavailable` (and closes what it opened)
    when it does not fit the store."""
    try:
        served = serve_bundle(bundle, parts)
    except ValueError as error:
        raise BundleIncompatible(
            f"bundle {bundle.version} does not fit the {parts.settings.store} store: {error}"
        ) from error
    try:
        await _probe(served, parts.settings.store)
    except BaseException:
        await served.close()
        raise
    return served


def _result_of(error: ServiceError) -> ActivationResult:
    for kind, result in _RESULT_OF:
        if isinstance(error, kind):
            return result
    return ActivationResult.ERROR


def _bundle_dir(root: Path, version: str) -> Path:
    if not VERSION_PATTERN.fullmatch(version):
        raise BundleNotFoundError(
            f"{version!r} is not a bundle version: letters, digits, '.', '_' and '-', at most 128"
        )
    bundle_dir = root / version
    if not bundle_dir.is_dir():
        raise BundleNotFoundError(
            f"bundle {version} not found under the bundle root: copy bundles/{version}/ there first"
        )
    try:
        return confined_bundle_dir(root, version)
    except BundleIntegrityError as error:
        raise BundleCorrupt(str(error)) from error


def probe_items(bundle: LoadedBundle, count: int = PROBE_ITEMS) -> list[str]:
    """Item IDs spread evenly over the bundle's table."""
    rows = len(bundle.items)
    if rows == 0:
        return []
    picks = np.unique(np.linspace(0, rows - 1, min(count, rows)).astype(np.int64))
    return [str(bundle.items.ids[row]) for row in picks]


async def _probe(served: ServedBundle, store_name: str) -> None:
    """Check the store holds the bundle's item vectors, then score one request end to end."""
    bundle = served.bundle
    items = probe_items(bundle)
    if not items:
        raise BundleIncompatible(f"bundle {bundle.version} has an empty item table")
    try:
        fetched = await served.store.fetch(FetchQuery(PROBE_USER, items))
    except StoreError as error:
        raise StoreUnavailable(
            f"cannot check bundle {bundle.version} against the {store_name} store: "
            f"{error.message}; try again once the store answers"
        ) from error
    known = int(fetched.candidate_known.sum())
    if known < len(items):
        raise BundleIncompatible(
            f"bundle {bundle.version}: only {known} of {len(items)} sampled items have a "
            f"d={bundle.items.dim} vector in the {store_name} store under this version; publish "
            f"it first (reaseq publish --store {store_name} --version {bundle.version} "
            "--no-activate)"
        )
    query = RankQuery(
        request_id="bundle-activation-probe",
        user_id=PROBE_USER,
        candidates=items,
        top_k=1,
        timeout_ms=_PROBE_TIMEOUT_MS,
    )
    try:
        await served.pipeline.rank(query)
    except Exception as error:
        raise BundleIncompatible(
            f"bundle {bundle.version}: scoring a probe request failed: {error}"
        ) from error

"""How this process scores, decided once at start-up from the settings and said in the log.

The host path (``REASEQ_DEVICE=cpu``, attention ``onnx_cpu`` or ``numpy``) is
:class:`service.ranking.scoring.GraphRunner`. The device path (``REASEQ_DEVICE=cuda``, or a
``torch``/``triton`` attention backend, which on ``cpu`` runs the same code on PyTorch's CPU
tensors for tests) is :class:`service.device.runner.DeviceRunner`; only then is PyTorch imported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import onnxruntime as ort

from kernels.target_attention import AttentionBackend, default_backend
from service.bundles.loaded import LoadedBundle, Provider
from service.ranking.observer import NO_OBSERVER, RankingObserver
from service.ranking.scoring import GraphRunner, ScoringRunner
from service.ranking.user_cache import UserStateCache
from service.threads import default_attention_threads, usable_cores

if TYPE_CHECKING:
    from service.settings import Settings

log = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
#: onnxruntime providers per device when REASEQ_ONNX_PROVIDERS is empty, in order of preference.
DEFAULT_PROVIDERS = {"cpu": (CPU_PROVIDER,), "cuda": (CUDA_PROVIDER, CPU_PROVIDER)}
#: The provider that runs a graph on the device's own memory.
DEVICE_PROVIDER = {"cpu": CPU_PROVIDER, "cuda": CUDA_PROVIDER}

DeviceGraphsEngine = Literal["onnxruntime", "torch"]


class DeviceUnavailable(RuntimeError):
    """The device path was asked for but cannot run here; the message says what is missing."""


@dataclass(frozen=True)
class ScoringPlan:
    """Where and with what batches are scored."""

    device: Literal["cpu", "cuda"]
    device_index: int
    backend: AttentionBackend
    #: onnxruntime providers of the bundle's sessions (with options for CUDA's).
    providers: tuple[Provider, ...]
    #: What runs the encoders and the scorer on the device path (None on the host path).
    device_graphs: DeviceGraphsEngine | None = None
    #: Whether the device path may fall back to PyTorch when onnxruntime cannot run there.
    torch_fallback: bool = False
    #: Threads that share a large request's attention on the host path.
    attention_threads: int = 1
    #: How far below the event loop's priority the scoring threads (and the host path's attention
    #: threads) run.
    thread_niceness: int = 0

    @property
    def on_device(self) -> bool:
        return not self.backend.on_host

    @property
    def cuda_devices(self) -> list[int]:
        """GPUs this process computes on (what the GPU-memory metric reports)."""
        return [self.device_index] if self.device == "cuda" else []

    def describe(self) -> str:
        names = ", ".join(p if isinstance(p, str) else p[0] for p in self.providers)
        if not self.on_device:
            threads = f"{self.attention_threads} thread{'s' if self.attention_threads > 1 else ''}"
            return (
                f"host path: graphs on onnxruntime ({names}), attention {self.backend.value} "
                f"over {threads}{self._below()}"
            )
        device = self.device if self.device == "cpu" else f"cuda:{self.device_index}"
        engine = (
            f"onnxruntime ({names}) with IOBinding"
            if self.device_graphs == "onnxruntime"
            else "PyTorch from the bundle's module weights"
        )
        return (
            f"device path on {device}: graphs on {engine}, attention {self.backend.value}"
            f"{self._below()}"
        )

    def _below(self) -> str:
        if not self.thread_niceness:
            return ""
        return f", model threads {self.thread_niceness} nice levels below the event loop"


def plan_scoring(settings: Settings) -> ScoringPlan:
    """The plan the settings ask for, checked against what is installed; raises
    :class:`DeviceUnavailable` when the device path cannot run here."""
    backend = (
        default_backend(settings.device)
        if settings.attention_backend == "auto"
        else AttentionBackend(settings.attention_backend)
    )
    names = _available_providers(settings.onnx_providers or DEFAULT_PROVIDERS[settings.device])
    if backend.on_host:
        threads = settings.attention_threads or default_attention_threads(usable_cores())
        return ScoringPlan(
            settings.device,
            settings.device_index,
            backend,
            tuple(names),
            attention_threads=threads,
            thread_niceness=settings.model_thread_niceness,
        )
    own = DEVICE_PROVIDER[settings.device]
    engine: DeviceGraphsEngine
    if settings.device_graphs == "auto":
        engine = "onnxruntime" if names[0] == own else "torch"
    elif settings.device_graphs == "onnxruntime" and names[0] != own:
        raise DeviceUnavailable(
            f"REASEQ_DEVICE_GRAPHS=onnxruntime needs {own} first among onnxruntime's providers "
            f"(have {names}): install onnxruntime-gpu, or set REASEQ_DEVICE_GRAPHS=torch"
        )
    else:
        engine = settings.device_graphs
    providers: list[Provider] = list(names)
    if settings.device == "cuda":
        from service.device.context import device_context

        context = device_context("cuda", settings.device_index)
        providers = [
            (name, context.cuda_provider_options()) if name == CUDA_PROVIDER else name
            for name in names
        ]
    return ScoringPlan(
        settings.device,
        settings.device_index,
        backend,
        tuple(providers),
        engine,
        torch_fallback=settings.device_graphs == "auto",
        thread_niceness=settings.model_thread_niceness,
    )


def _available_providers(wanted: list[str] | tuple[str, ...]) -> list[str]:
    available = ort.get_available_providers()
    missing = [name for name in wanted if name not in available]
    if missing:
        log.warning(
            "onnxruntime %s has no %s (it has %s): skipped", ort.__version__, missing, available
        )
    return [name for name in wanted if name in available] or [CPU_PROVIDER]


def open_runner(
    bundle: LoadedBundle,
    plan: ScoringPlan,
    settings: Settings,
    observer: RankingObserver = NO_OBSERVER,
    cache: UserStateCache | None = None,
) -> ScoringRunner:
    """The runner of ``plan`` for ``bundle``."""
    if not plan.on_device:
        return GraphRunner(
            bundle,
            settings.graph_mode,
            observer=observer,
            cache=cache,
            attention_threads=plan.attention_threads,
            attention_chunk_bytes=settings.attention_chunk_kb * 1024,
            backend=plan.backend,
            thread_niceness=plan.thread_niceness,
        )
    from service.device.runner import DeviceRunner

    return DeviceRunner.open(bundle, plan, observer, cache)

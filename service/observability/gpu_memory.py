"""GPU memory of the devices the service computes on, read from NVML at scrape time.

Only registered when something actually runs on CUDA (an onnxruntime session on the CUDA
provider, or the device path's tensors and kernels): a CPU deployment exports no GPU series at
all, rather than zeros that would read as "a GPU with nothing on it". NVML reports the whole
device (every process on it), which is what decides whether the next bundle fits.
NVML comes from ``nvidia-ml-py`` (the ``gpu`` extra); without it the metric is skipped with a
warning, since serving must not fail over a missing gauge.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"


def cuda_devices(sessions: Iterable[Any]) -> list[int]:
    """Device ids of the onnxruntime sessions that run on CUDA (empty on CPU)."""
    devices = set()
    for session in sessions:
        if CUDA_PROVIDER not in session.get_providers():
            continue
        options: Mapping[str, Mapping[str, str]] = session.get_provider_options()
        devices.add(int(options.get(CUDA_PROVIDER, {}).get("device_id", 0)))
    return sorted(devices)


class GpuMemoryCollector(Collector):
    """``reaseq_gpu_memory_used_bytes`` and ``reaseq_gpu_memory_total_bytes`` per device."""

    def __init__(self, devices: list[int], nvml: Any) -> None:
        self._devices = devices
        self._nvml = nvml

    def collect(self) -> Iterator[Metric]:
        used = GaugeMetricFamily(
            "reaseq_gpu_memory_used_bytes", "GPU memory in use on the device.", labels=["device"]
        )
        total = GaugeMetricFamily(
            "reaseq_gpu_memory_total_bytes", "GPU memory of the device.", labels=["device"]
        )
        for device in self._devices:
            try:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(device)
                info = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except self._nvml.NVMLError as error:
                log.warning("cannot read the memory of GPU %d: %s", device, error)
                continue
            used.add_metric([str(device)], float(info.used))
            total.add_metric([str(device)], float(info.total))
        yield used
        yield total


def gpu_memory_collector(
    sessions: Iterable[Any], also: Iterable[int] = ()
) -> GpuMemoryCollector | None:
    """A collector for the CUDA devices in use (those of ``sessions``, and the devices
    ``also`` names), or None on CPU or without NVML."""
    devices = sorted(set(cuda_devices(sessions)) | set(also))
    if not devices:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
    except (ImportError, OSError) as error:
        log.warning("graphs run on CUDA but NVML is unavailable (%s): no GPU memory metric", error)
        return None
    except Exception as error:  # pynvml.NVMLError is not importable without pynvml
        log.warning("NVML failed to start (%s): no GPU memory metric", error)
        return None
    return GpuMemoryCollector(devices, pynvml)

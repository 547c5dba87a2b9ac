"""The torch device the device path computes on, and the one CUDA stream all of it runs on.

Every step of a batch (uploads, the graphs in onnxruntime through IOBinding, the Triton launch,
the scores' copy back) is queued on this one stream: onnxruntime's CUDA provider is given it as
its compute stream, and Triton and PyTorch launch on the current stream, which
:meth:`DeviceContext.scope` sets. So the stages need no synchronisation between them; the copy of
the scores back to the host is the only wait.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from service.device.plan import DeviceUnavailable


@dataclass(frozen=True)
class DeviceContext:
    device: torch.device
    stream: torch.cuda.Stream | None  # None on the CPU

    @property
    def name(self) -> str:
        """The device as people know it (the GPU's name)."""
        if self.device.type == "cuda":
            return str(torch.cuda.get_device_name(self.device))
        return "CPU"

    @property
    def ort_device(self) -> tuple[str, int]:
        """onnxruntime's name and id of the device (for IOBinding)."""
        if self.device.type == "cuda":
            return "cuda", int(self.device.index or 0)
        return "cpu", 0

    def scope(self) -> AbstractContextManager[Any]:
        """Make the context's stream the current one (nothing to do on the CPU)."""
        return torch.cuda.stream(self.stream) if self.stream is not None else nullcontext()

    def cuda_provider_options(self) -> dict[str, str]:
        """Options of onnxruntime's CUDA provider: this device, this stream, and no TF32 (the
        device path must score like the host path, to 1e-4; TF32 matmuls would not)."""
        assert self.stream is not None, "the CUDA provider needs a CUDA context"
        return {
            "device_id": str(self.device.index or 0),
            "user_compute_stream": str(self.stream.cuda_stream),
            "use_tf32": "0",
        }


@cache
def device_context(kind: str, index: int = 0) -> DeviceContext:
    """The process's context for ``kind`` (``cpu`` or ``cuda``) and device ``index``: one stream
    per GPU, shared by every bundle and scoring thread."""
    if kind == "cpu":
        return DeviceContext(torch.device("cpu"), None)
    if not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"REASEQ_DEVICE=cuda but PyTorch {torch.__version__} sees no CUDA device (a CPU "
            "build of PyTorch, no NVIDIA driver, or no GPU given to the container)"
        )
    if index >= torch.cuda.device_count():
        raise DeviceUnavailable(
            f"REASEQ_DEVICE_INDEX={index} but there are {torch.cuda.device_count()} CUDA devices"
        )
    device = torch.device("cuda", index)
    # Full float32 matmuls in PyTorch as well (the fallback graphs): the host path's precision.
    torch.backends.cuda.matmul.allow_tf32 = False
    return DeviceContext(device, torch.cuda.Stream(device))

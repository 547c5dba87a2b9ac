"""The encoders and the scorer on the device, over tensors that stay there.

:class:`OrtGraphs` runs the bundle's ONNX graphs in onnxruntime with IOBinding: inputs are bound
to the tensors' memory and outputs to tensors allocated here, so nothing is copied through the
host; on CUDA the sessions compute on the device context's stream (``user_compute_stream``), in
order with the uploads before and the Triton launch after, so a run does not wait for the GPU.
:class:`TorchGraphs` runs the same three steps as PyTorch modules rebuilt from the bundle's
weights: the path where onnxruntime has no provider for the device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor

from service.bundles.loaded import LoadedBundle
from service.contracts import graphs as g
from service.device.context import DeviceContext
from service.device.modules import BundleModules
from service.device.plan import DEVICE_PROVIDER, DeviceUnavailable

_ORT_TYPES: dict[torch.dtype, type[np.generic]] = {
    torch.float32: np.float32,
    torch.int64: np.int64,
}


class DeviceGraphs(Protocol):
    """The split graphs on device tensors, batch axis first (as the graph contract has them)."""

    @property
    def engine(self) -> str:
        """What runs them, for the start-up log."""

    def user_encoder(
        self,
        sequence: Tensor,
        events: Tensor,
        gaps: Tensor,
        generated: Tensor,
        slots: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``[B, L, d]``, ``[B, L]``, ``[B, L]``, ``[B, K, d]`` and, for a bundle with slot
        vectors, the generated slots ``[B, K]`` -> real keys and values ``[B, L, d]``,
        generated keys and values ``[B, K, d]``."""

    def candidate_encoder(self, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, C, d]`` -> real and generated queries ``[B, C, d]``."""

    def scorer(self, candidates: Tensor, real_pooled: Tensor, generated_pooled: Tensor) -> Tensor:
        """``[B, C, d]`` x 3 -> click probabilities ``[B, C]``."""


class TorchGraphs:
    """The graphs as PyTorch modules (call under ``torch.inference_mode()``)."""

    engine = "torch"

    def __init__(self, modules: BundleModules) -> None:
        self._modules = modules

    def user_encoder(
        self,
        sequence: Tensor,
        events: Tensor,
        gaps: Tensor,
        generated: Tensor,
        slots: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self._modules.user_encoder(sequence, events, gaps, generated, slots)

    def candidate_encoder(self, candidates: Tensor) -> tuple[Tensor, Tensor]:
        return self._modules.candidate_encoder(candidates)

    def scorer(self, candidates: Tensor, real_pooled: Tensor, generated_pooled: Tensor) -> Tensor:
        return self._modules.scorer(candidates, real_pooled, generated_pooled)


class OrtGraphs:
    """The bundle's onnxruntime sessions, run with IOBinding on the context's device."""

    engine = "onnxruntime"

    def __init__(self, bundle: LoadedBundle, context: DeviceContext) -> None:
        own = DEVICE_PROVIDER["cuda" if context.device.type == "cuda" else "cpu"]
        for name in (g.USER_ENCODER, g.CANDIDATE_ENCODER, g.SCORER):
            found = bundle.sessions[name].get_providers()
            if found[0] != own:
                raise DeviceUnavailable(
                    f"graph {name} of bundle {bundle.version} runs on {found[0]}, not {own}"
                )
        self._sessions = bundle.sessions
        self._inputs = {
            name: frozenset(i.name for i in session.get_inputs())
            for name, session in bundle.sessions.items()
        }
        self._device_type, self._device_id = context.ort_device
        self._device = context.device
        self._options = ort.RunOptions()
        if context.stream is not None:
            # Everything is ordered on the one stream: a run need not wait for its kernels.
            self._options.add_run_config_entry("disable_synchronize_execution_providers", "1")

    def user_encoder(
        self,
        sequence: Tensor,
        events: Tensor,
        gaps: Tensor,
        generated: Tensor,
        slots: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        real_shape, generated_shape = sequence.shape, generated.shape
        outputs = {
            g.REAL_KEYS: self._empty(real_shape),
            g.REAL_VALUES: self._empty(real_shape),
            g.GENERATED_KEYS: self._empty(generated_shape),
            g.GENERATED_VALUES: self._empty(generated_shape),
        }
        inputs = {
            g.SEQUENCE_VECTORS: sequence,
            g.SEQUENCE_EVENTS: events,
            g.SEQUENCE_GAPS: gaps,
            g.GENERATED_VECTORS: generated,
        }
        if slots is not None:
            inputs[g.GENERATED_SLOTS] = slots
        self._run(g.USER_ENCODER, inputs, outputs)
        return (
            outputs[g.REAL_KEYS],
            outputs[g.REAL_VALUES],
            outputs[g.GENERATED_KEYS],
            outputs[g.GENERATED_VALUES],
        )

    def candidate_encoder(self, candidates: Tensor) -> tuple[Tensor, Tensor]:
        outputs = {
            g.REAL_QUERIES: self._empty(candidates.shape),
            g.GENERATED_QUERIES: self._empty(candidates.shape),
        }
        self._run(g.CANDIDATE_ENCODER, {g.CANDIDATE_VECTORS: candidates}, outputs)
        return outputs[g.REAL_QUERIES], outputs[g.GENERATED_QUERIES]

    def scorer(self, candidates: Tensor, real_pooled: Tensor, generated_pooled: Tensor) -> Tensor:
        outputs = {g.SCORES: self._empty(candidates.shape[:2])}
        inputs = {
            g.CANDIDATE_VECTORS: candidates,
            g.REAL_POOLED: real_pooled,
            g.GENERATED_POOLED: generated_pooled,
        }
        self._run(g.SCORER, inputs, outputs)
        return outputs[g.SCORES]

    def _empty(self, shape: torch.Size) -> Tensor:
        return torch.empty(tuple(shape), dtype=torch.float32, device=self._device)

    def _run(self, graph: str, inputs: Mapping[str, Tensor], outputs: Mapping[str, Tensor]) -> None:
        """Bind the inputs the graph declares and every output, then run it. The tensors must
        stay alive until the stream has run the graph: the caller holds them."""
        binding = self._sessions[graph].io_binding()
        declared = self._inputs[graph]
        bound = {name: tensor.contiguous() for name, tensor in inputs.items() if name in declared}
        for name, tensor in bound.items():
            self._bind(binding.bind_input, name, tensor)
        for name, tensor in outputs.items():
            self._bind(binding.bind_output, name, tensor)
        self._sessions[graph].run_with_iobinding(binding, self._options)

    def _bind(self, bind: Callable[..., None], name: str, tensor: Tensor) -> None:
        bind(
            name,
            self._device_type,
            self._device_id,
            _ORT_TYPES[tensor.dtype],
            list(tensor.shape),
            tensor.data_ptr(),
        )

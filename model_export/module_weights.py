"""The encoders' and the scorer's weights, written beside the graphs of a bundle.

Where onnxruntime has no provider for the serving device (a GPU without ``onnxruntime-gpu``), the
service runs these three modules in PyTorch (``service.device.modules``) from this file, whose
layout :class:`service.contracts.manifest.ModuleWeights` defines: float32 arrays named
``<graph>.<parameter>``. A plain ``.npz`` (no pickle), so reading it never executes code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model_export.model import RankingModel
from service.contracts import graphs as g
from service.contracts.manifest import ModuleWeights

MODULE_WEIGHTS_FILE = "module_weights.npz"


def write_module_weights(model: RankingModel, directory: Path) -> ModuleWeights:
    """Write ``directory/module_weights.npz``; returns its manifest entry."""
    modules = {
        g.USER_ENCODER: model.user_encoder,
        g.CANDIDATE_ENCODER: model.candidate_encoder,
        g.SCORER: model.scorer,
    }
    arrays = {}
    with torch.no_grad():
        for graph, module in modules.items():
            for name, tensor in module.state_dict().items():
                arrays[f"{graph}.{name}"] = tensor.detach().cpu().to(torch.float32).numpy()
    np.savez(directory / MODULE_WEIGHTS_FILE, **arrays)  # type: ignore[arg-type]
    return ModuleWeights(file=MODULE_WEIGHTS_FILE, hidden_dim=model.shape.hidden_dim)

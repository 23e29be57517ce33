"""The activity classifier with a well-being head. Opacus-compatible: Linear layers only, no BatchNorm.

Its input and output sizes come from the data (the prepared partition or index carries the
schema's feature and label names), never from the simulator's constants."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn



class ModelConfig(BaseModel):
    """[model]"""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(128, ge=4, le=4096, description="units per hidden layer")
    layers: int = Field(2, ge=1, le=8, description="hidden layers")
    wellbeing_weight: float = Field(0.2, ge=0, le=100, description="weight of the well-being loss (0 = off)")


class ActivityNet(nn.Module):
    """MLP trunk, an activity head (one logit per label) and a scalar well-being head."""

    def __init__(self, cfg: ModelConfig, n_features: int, n_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.ReLU()]
            width = cfg.hidden
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes + 1)
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the activity classes, then the well-being prediction, in one tensor."""
        return self.head(self.trunk(x))


def build_model(cfg: ModelConfig, seed: int, n_features: int, n_classes: int) -> ActivityNet:
    """Same seed, same initial weights: every engine starts from identical parameters."""
    g = torch.random.fork_rng(devices=[])
    with g:
        torch.manual_seed(seed)
        return ActivityNet(cfg, n_features, n_classes)


def model_for_index(cfg: ModelConfig, seed: int, index: dict) -> ActivityNet:
    """The model for the prepared data described by `index` (datasets/prepared.py)."""
    return build_model(cfg, seed, len(index["features"]), len(index["labels"]))


def get_weights(model: nn.Module) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in model.state_dict().values()]


def set_weights(model: nn.Module, weights: list[np.ndarray]) -> None:
    keys = list(model.state_dict().keys())
    if len(keys) != len(weights):
        raise ValueError(f"model has {len(keys)} tensors, received {len(weights)}")
    model.load_state_dict({k: torch.from_numpy(np.asarray(w)).clone() for k, w in zip(keys, weights)}, strict=True)


def released_model(path, cfg: ModelConfig, seed: int, index: dict) -> ActivityNet:
    """The model a finished run released (its model.npz), for studies outside the federation."""
    model = model_for_index(cfg, seed, index)
    with np.load(path) as z:
        set_weights(model, [z[f"arr_{i}"] for i in range(len(z.files))])
    return model

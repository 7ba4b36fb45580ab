"""What the in-loop modules (forecasting, perception) share: MLP, worker threads, provenance."""

from __future__ import annotations

import multiprocessing
import warnings
from typing import Any

import gymnasium as gym
import torch
from torch import nn


def mlp(i: int, h: int, o: int) -> nn.Sequential:
    """``Linear(i, h) → SiLU → Linear(h, o)``."""
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o))


def one_thread_in_workers() -> None:
    """In a vector env's worker process, run torch on one thread (one process per core)."""
    if multiprocessing.parent_process() is not None:
        torch.set_num_threads(1)


def warn_if_trained_elsewhere(what: str, path: Any, trained_on: dict[str, Any],
                              env: gym.Env) -> None:
    """Warn when a model trained on another env id is used on ``env``."""
    env_id = env.spec.id if env.spec is not None else None
    if trained_on.get("env") not in (None, env_id):
        warnings.warn(f"{what} {path} was trained on {trained_on['env']}, used on {env_id}",
                      stacklevel=3)


__all__ = ["mlp", "one_thread_in_workers", "warn_if_trained_elsewhere"]

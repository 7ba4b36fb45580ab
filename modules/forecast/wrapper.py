"""A Gymnasium wrapper that adds a forecaster's predicted displacements as vector node features.

``ForecastWrapper(env, forecaster)`` keeps the last ``history`` positions of one node type (at a
reset, the reset position repeated: zero velocity), runs the forecaster after every reset and step
(no gradient: PPO does not train it) and appends, for each step ``k`` in ``steps``, the predicted
displacement ``x(t + k) - x(t)`` as a vector channel ``forecast_<k>`` of that node type. The graph
spec (``wrapper.graph_spec``) and observation space grow by those channels; they are vectors, so
rotating the scene rotates them (the forecaster is E(3)-equivariant) and every equivariant policy
stays exactly equivariant.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from equigym.graph import GraphSpec
from equigym.modules.common import one_thread_in_workers, warn_if_trained_elsewhere
from equigym.modules.forecast.data import default_node_type
from equigym.modules.forecast.model import EqMotionForecaster, load_forecaster


def forecast_spec(spec: GraphSpec, node_type: str, steps: Sequence[int]) -> GraphSpec:
    """``spec`` with vector channels ``forecast_<k>`` appended to ``node_type``."""
    names = tuple(f"forecast_{k}" for k in steps)
    nodes = []
    for n in spec.node_types:
        if n.name == node_type:
            desc = {**n.descriptions, **{name: f"forecast displacement {k} steps ahead, m (world)"
                                         for name, k in zip(names, steps, strict=True)}}
            n = dataclasses.replace(n, vector_names=n.vector_names + names,
                                    vector_kinds=n.vector_kinds + ("vector",) * len(names),
                                    descriptions=desc)  # fmt: skip
        nodes.append(n)
    return dataclasses.replace(spec, node_types=tuple(nodes))


class ForecastWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds ``forecast_<k>`` vector channels to a node type (see the module docstring).

    Args:
        env: An equigym env (or a wrapper around one).
        forecaster: A trained :class:`EqMotionForecaster` (put in eval mode, CPU).
        node_type: Node type to forecast (default: the one the forecaster trained on, else the
            first non-actuator type).
        steps: Horizon steps to expose (default: 1, the middle and the last step).

    Raises:
        ValueError: For an unknown node type or a step outside ``1..horizon``.
    """

    def __init__(
        self,
        env: gym.Env,
        forecaster: EqMotionForecaster,
        node_type: str | None = None,
        steps: Sequence[int] | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, forecaster=forecaster, node_type=node_type, steps=steps
        )  # so gym.make(env.spec) can rebuild it (check_env does)
        gym.Wrapper.__init__(self, env)
        base: GraphSpec = env.get_wrapper_attr("graph_spec")
        names = [n.name for n in base.node_types]
        self.node_type = (node_type or forecaster.trained_on.get("node_type")
                          or default_node_type(base))  # fmt: skip
        if self.node_type not in names:
            raise ValueError(f"the env has no node type {self.node_type!r} (it has {names})")
        h = forecaster.horizon
        self.steps = tuple(sorted(set(steps))) if steps is not None else tuple(
            sorted({1, (h + 1) // 2, h}))
        if not self.steps or any(not 1 <= k <= h for k in self.steps):
            raise ValueError(f"forecast steps must be in 1..{h}, got {steps}")
        self.forecaster = forecaster.eval()
        self.graph_spec = forecast_spec(base, self.node_type, self.steps)
        self.observation_space = self.graph_spec.observation_space()
        self._history: deque[np.ndarray] = deque(maxlen=forecaster.history)

    def _augment(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        t = self.node_type
        pos = np.asarray(obs[f"{t}/pos"], dtype=np.float32)
        self._history.append(pos)
        past = torch.as_tensor(np.stack(self._history, axis=1))[None]  # (1, N, T, 3)
        mask = torch.as_tensor(np.asarray(obs[f"{t}/mask"], dtype=np.float32))[None]
        with torch.no_grad():
            future = self.forecaster(past, mask)[0].numpy()  # (N, H, 3)
        disp = future[:, [k - 1 for k in self.steps]] - pos[:, None]
        out = dict(obs)
        out[f"{t}/vec"] = np.concatenate([obs[f"{t}/vec"], disp], axis=1).astype(np.float32)
        return out

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the env and fill the history with the reset positions."""
        obs, info = self.env.reset(**kwargs)
        self._history.clear()
        for _ in range(self.forecaster.history - 1):
            self._history.append(np.asarray(obs[f"{self.node_type}/pos"], dtype=np.float32))
        return self._augment(obs), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """Step the env and add the forecast."""
        obs, reward, term, trunc, info = self.env.step(action)
        return self._augment(obs), reward, term, trunc, info


def wrap_forecast(env: gym.Env, path: str) -> ForecastWrapper:
    """``ForecastWrapper(env, load_forecaster(path))``: picklable with ``functools.partial``.

    In a vector env's worker process torch runs on one thread (one process per core already).
    """
    one_thread_in_workers()
    model = load_forecaster(path)
    warn_if_trained_elsewhere("forecaster", path, model.trained_on, env)
    return ForecastWrapper(env, model)


def forecast_wrapper(path: str | os.PathLike | None) -> Callable[[gym.Env], gym.Env] | None:
    """The per-env wrapper for the forecaster at ``path`` (``None``: no wrapper).

    A ``functools.partial`` of :func:`wrap_forecast`, so sub-process vector envs can pickle it;
    ``train.py --forecast`` and the evaluator of such a run both use it.
    """
    if path is None:
        return None
    return functools.partial(wrap_forecast, path=str(path))


__all__ = ["ForecastWrapper", "forecast_spec", "forecast_wrapper", "wrap_forecast"]

"""The perception interface and its three levels.

A :class:`Perception` estimates the positions of one node type (the tracked object: rigid
outline vertices, rope vertices, cloth rim) from what a sensor sees, once after every reset and
step. :class:`~equigym.modules.perception.wrapper.PerceptionWrapper` puts the estimate into the
observation.

=====  =========================  ==================================================  =========
level  class                      what it sees → how it estimates                     envs
=====  =========================  ==================================================  =========
0      :class:`NoisyGroundTruth`  simulator positions + Gaussian noise, dropout        all
                                  (a dropped node keeps its last estimate), latency
1      :class:`GeometricPerception` depth camera → world points → geometric fit        manipulation
2      :class:`KeypointPerception` level 1's points and fit → equivariant network      manipulation
                                  refinement (:mod:`~equigym.modules.perception.keypoints`)
=====  =========================  ==================================================  =========

Levels 0 and 1 need no torch; level 2 imports it when built.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from equigym.modules.forecast.data import default_node_type


class Perception:
    """Estimates one node type's positions; subclasses implement :meth:`reset` and :meth:`step`.

    Attributes:
        level: 0, 1 or 2.
        node_type: The node type estimated (set by :meth:`bind`).
        fitter: The level-1 geometric fitter (levels 1 and 2), which also scores rigid poses.
        rotation: A rigid object's estimated rotation after the last estimate (levels 1 and 2;
            ``None`` otherwise).
    """

    level: int = -1

    def __init__(self) -> None:
        self.node_type = ""
        self.fitter: Any = None
        self.rotation: np.ndarray | None = None

    def bind(self, env: gym.Env) -> None:
        """Attach to an env (called once by the wrapper).

        Raises:
            ValueError: If this level does not cover the env.
        """
        self.node_type = default_node_type(env.get_wrapper_attr("graph_spec"))

    def reset(self, obs: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Estimate after a reset: ``(N, 3)`` positions, padded like ``obs[f"{t}/pos"]``."""
        raise NotImplementedError

    def step(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Estimate after a step (same layout as :meth:`reset`)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release renderers (if any)."""
        if self.fitter is not None and hasattr(self.fitter, "close"):
            self.fitter.close()

    def config(self) -> dict[str, Any]:
        """JSON-able settings (for run folders and benchmark records)."""
        return {"level": self.level}


class NoisyGroundTruth(Perception):
    """Level 0: the simulator's node positions, with a sensor model.

    Per node and step: with probability ``dropout`` the node is not seen and keeps its last
    estimate; otherwise its position from ``latency`` steps ago plus isotropic Gaussian noise of
    std ``noise`` (m) per axis. Isotropic noise commutes with rotations, so an equivariant policy
    stays equivariant in distribution.

    Args:
        noise: Std of the position noise, m.
        dropout: Probability that a node is not updated in a step.
        latency: Steps of delay (0: the current frame).

    Raises:
        ValueError: For a negative noise or latency, or a dropout outside [0, 1).
    """

    level = 0

    def __init__(self, noise: float = 0.005, dropout: float = 0.05, latency: int = 1) -> None:
        super().__init__()
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite std >= 0 (m), got {noise!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ValueError(f"latency must be an integer >= 0 (steps), got {latency!r}")
        self.noise, self.dropout, self.latency = float(noise), float(dropout), latency
        self._frames: deque[np.ndarray] = deque(maxlen=latency + 1)
        self._last = np.zeros((0, 3))
        self._rng = np.random.default_rng(0)

    def _estimate(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        t = self.node_type
        self._frames.append(np.asarray(obs[f"{t}/pos"], dtype=np.float64).copy())
        seen = self._frames[0] + self.noise * self._rng.standard_normal(self._frames[0].shape)
        if self.dropout and len(self._last) == len(seen):
            dropped = self._rng.random(len(seen)) < self.dropout
            seen[dropped] = self._last[dropped]
        seen *= np.asarray(obs[f"{t}/mask"])[:, None] > 0.5
        self._last = seen
        return seen

    def reset(self, obs: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Fill the delay line with the reset frame; estimate."""
        self._rng = rng
        self._frames.clear()
        for _ in range(self.latency):
            self._frames.append(np.asarray(obs[f"{self.node_type}/pos"], dtype=np.float64))
        self._last = np.zeros((0, 3))  # nothing to hold at a reset: every node is seen
        return self._estimate(obs)

    def step(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Estimate from the delayed frame."""
        return self._estimate(obs)

    def config(self) -> dict[str, Any]:
        """Level and sensor model."""
        return {"level": 0, "noise": self.noise, "dropout": self.dropout,
                "latency": self.latency}


class GeometricPerception(Perception):
    """Level 1: depth camera → point cloud → geometric fit (:mod:`.geometric`)."""

    level = 1

    def bind(self, env: gym.Env) -> None:
        """Pick the fitter of the env's kind (rigid, rope, cloth)."""
        from equigym.modules.perception.geometric import make_fitter

        super().bind(env)
        self.fitter = make_fitter(env)

    def _pose(self, nodes: np.ndarray) -> np.ndarray:
        if self.fitter.kind == "rigid":
            self.rotation = self.fitter.rot.copy()
        return nodes

    def reset(self, obs: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Fit the first frame (a rigid object: search its pose)."""
        return self._pose(self.fitter.reset(obs))

    def step(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Fit (track) the current frame."""
        return self._pose(self.fitter.step(obs))


class KeypointPerception(GeometricPerception):
    """Level 2: level 1's point cloud and fit, refined by an equivariant keypoint network.

    Args:
        path: Folder or file of a network trained with
            ``python -m equigym.modules.perception.train``.
    """

    level = 2

    def __init__(self, path: str) -> None:
        super().__init__()
        from equigym.modules.perception.keypoints import load_keypoint_net

        self.path = str(path)
        self.net = load_keypoint_net(path)

    def bind(self, env: gym.Env) -> None:
        """As level 1; warn if the network was trained on another env."""
        from equigym.modules.common import warn_if_trained_elsewhere

        super().bind(env)
        warn_if_trained_elsewhere("keypoint network", self.path, self.net.trained_on, env)

    def _refine(self, obs: dict[str, np.ndarray], prior: np.ndarray) -> np.ndarray:
        from equigym.modules.perception.keypoints import refine

        nodes = refine(self.net, self.fitter.points, prior, obs, self.node_type)
        if self.fitter.kind == "rigid":  # the known outline fitted to the keypoints (Kabsch)
            self.rotation = self.fitter.pose_of(nodes)
            nodes = self.fitter.place(nodes, self.rotation)
        return nodes

    def reset(self, obs: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Level 1's fit, refined."""
        return self._refine(obs, super().reset(obs, rng))

    def step(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Level 1's fit, refined."""
        return self._refine(obs, super().step(obs))

    def config(self) -> dict[str, Any]:
        """Level and network path."""
        return {"level": 2, "path": self.path}


def make_perception(level: int, path: str | None = None, **kwargs: Any) -> Perception:
    """A perception of ``level`` (0, 1 or 2; level 2 needs the network's ``path``).

    Raises:
        ValueError: For an unknown level, a level-2 request without a path, or keyword
            arguments the level does not take.
    """
    if level == 0:
        return NoisyGroundTruth(**kwargs)
    if kwargs:
        raise ValueError(f"perception level {level} takes no settings {sorted(kwargs)}")
    if level == 1:
        return GeometricPerception()
    if level == 2:
        if path is None:
            raise ValueError("perception level 2 needs a trained keypoint network: pass its "
                             "folder with --perception-net DIR (train one with python -m "
                             "equigym.modules.perception.train --out DIR)")
        return KeypointPerception(path)
    raise ValueError(f"perception level must be 0, 1 or 2, got {level!r}")


__all__ = [
    "GeometricPerception",
    "KeypointPerception",
    "NoisyGroundTruth",
    "Perception",
    "make_perception",
]

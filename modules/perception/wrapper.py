"""A Gymnasium wrapper that replaces a node type's positions with perceived ones.

``PerceptionWrapper(env, perception)`` runs a :class:`~equigym.modules.perception.levels.Perception`
after every reset and step and rebuilds what the env derived from the node positions, as the env
would from the perceived positions:

- ``<t>/pos``: the estimate;
- ``offset`` channels (position minus the task's target point): shifted by the estimate's error
  (RopeShaping's centred offsets are re-centred); for a rigid object at levels 1-2, recomputed
  from the estimated pose against the symmetry-nearest target pose, as the env does;
- ``lin_vel`` channels: finite differences of successive estimates over the control period
  (zero after a reset, where envs start at rest), unless ``velocity="true"``;
- ``ang_vel`` (rigid objects): the rotation between successive estimated poses (levels 1-2) or
  node sets (level 0, Kabsch) over the control period.

Actuator nodes (the robot's own grippers) keep their true positions: proprioception. The
observation space and graph spec do not change, so every policy consumes the wrapped env as is.
``info`` gains ``perception_error`` (mean node error, m; rigid objects up to their symmetry),
``perception_rotation_error`` (rad, rigid objects at levels 1-2) and ``perception_points`` (size
of the point cloud, levels 1-2).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from scipy.spatial.transform import Rotation

from equigym.envs.manipulation.scripted import kabsch
from equigym.modules.perception.levels import Perception, make_perception


class PerceptionWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace a node type's positions (and what depends on them) with perceived ones.

    Args:
        env: An equigym env (or a wrapper around one).
        perception: The perception to run (bound to ``env`` here), or its level (0, 1, 2).
        path: Level 2's keypoint network (when ``perception`` is a level).
        settings: Level 0's sensor model (when ``perception`` is a level): ``noise``,
            ``dropout``, ``latency``.
        velocity: ``"perceived"`` (finite differences of estimates) or ``"true"`` (keep the
            simulator's velocities, e.g. to isolate the position error).

    Raises:
        ValueError: For an unknown ``velocity``, level or setting, or a level that does not
            cover the env.
    """

    def __init__(self, env: gym.Env, perception: Perception | int = 0, path: str | None = None,
                 settings: dict[str, Any] | None = None,
                 velocity: Literal["perceived", "true"] = "perceived") -> None:
        if velocity not in ("perceived", "true"):
            raise ValueError(f"velocity must be 'perceived' or 'true', got {velocity!r}")
        if not isinstance(perception, Perception):
            perception = make_perception(perception, path, **(settings or {}))
        config = perception.config()
        # Recorded as plain values, so env.spec stays serialisable and gym.make(env.spec)
        # rebuilds a fresh perception (check_env does).
        gym.utils.RecordConstructorArgs.__init__(
            self, perception=config.pop("level"), path=config.pop("path", None),
            settings=config or None, velocity=velocity)
        gym.Wrapper.__init__(self, env)
        perception.bind(env)
        self.perception, self.velocity = perception, velocity
        spec = env.get_wrapper_attr("graph_spec")
        self.node_type = perception.node_type
        names = spec.node_type(self.node_type).vector_names
        self._channels = {name: i for i, name in enumerate(names)}
        self._dt = float(env.unwrapped.dt)
        u = env.unwrapped
        self._centred = getattr(u, "task", None) == "shaping"  # RopeShaping's offsets
        # RopeShaping's gripper offsets share the rope's centring: their channel, if any.
        act = spec.node_type("actuator").vector_names if self._centred else ()
        self._act_offset = act.index("offset") if "offset" in act else None
        self._knn = int(getattr(u, "knn", 0) or 0)  # rope-knn-rope edges, from positions
        # Seeded by reset(seed=...); a fixed default keeps unseeded runs reproducible too.
        self._rng = np.random.default_rng(0)
        self._prev: np.ndarray | None = None
        self._prev_rot: np.ndarray | None = None

    def _apply(self, obs: dict[str, np.ndarray], est: np.ndarray, info: dict[str, Any],
               first: bool) -> dict[str, np.ndarray]:
        t, ch = self.node_type, self._channels
        mask = np.asarray(obs[f"{t}/mask"]) > 0.5
        est = np.where(mask[:, None], est, 0.0)
        true = np.asarray(obs[f"{t}/pos"], dtype=np.float64)
        out = dict(obs)
        vec = np.array(obs[f"{t}/vec"], dtype=np.float64)
        fitter = self.perception.fitter
        rot = self.perception.rotation
        if "offset" in ch:
            if rot is not None:
                vec[:, ch["offset"]] = fitter.offsets(est, rot)
            else:
                err = (est - true) * mask[:, None]
                if self._centred:
                    err -= err[mask].mean(axis=0) * mask[:, None]
                vec[:, ch["offset"]] += err
        if self.velocity == "perceived":
            if "lin_vel" in ch:
                vel = np.zeros_like(est) if first else (est - self._prev) / self._dt
                vec[:, ch["lin_vel"]] = vel * mask[:, None]
            if "ang_vel" in ch:
                if first:
                    w = np.zeros(3)
                elif rot is not None:
                    w = Rotation.from_matrix(rot @ self._prev_rot.T).as_rotvec() / self._dt
                else:
                    r = kabsch(self._prev[mask], est[mask])
                    w = Rotation.from_matrix(r).as_rotvec() / self._dt
                vec[:, ch["ang_vel"]] = w * mask[:, None]
        self._prev, self._prev_rot = est, rot
        out[f"{t}/pos"] = est.astype(np.float32)
        out[f"{t}/vec"] = vec.astype(np.float32)
        if self._act_offset is not None and "offset" in ch:
            act = np.array(obs["actuator/vec"], dtype=np.float64)
            act[:, self._act_offset] -= ((est - true)[mask]).mean(axis=0)
            out["actuator/vec"] = act.astype(np.float32)
        if self._knn:  # spatial neighbours of the perceived rope, as the env finds them
            from equigym.envs.manipulation.rope_v0 import knn_sources

            idx = np.array(obs[f"{t}-knn-{t}/index"])
            idx[0] = knn_sources(est, self._knn)
            out[f"{t}-knn-{t}/index"] = idx
        # Metrics (the simulator's truth is at hand here, never in the observation).
        if rot is not None:
            node_err, rot_err = fitter.errors(est, rot)
            info["perception_rotation_error"] = float(rot_err)
        else:
            node_err = float(np.linalg.norm(est[mask] - true[mask], axis=1).mean())
        info["perception_error"] = float(node_err)
        if hasattr(fitter, "n_points"):
            info["perception_points"] = int(fitter.n_points)
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the env and perceive the first frame (``seed`` also seeds the sensor noise)."""
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E45]))
        est = self.perception.reset(obs, self._rng)
        info = dict(info)
        return self._apply(obs, est, info, first=True), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """Step the env and perceive the new frame."""
        obs, reward, term, trunc, info = self.env.step(action)
        est = self.perception.step(obs)
        return self._apply(obs, est, info, first=False), reward, term, trunc, info

    def close(self) -> None:
        """Close the perception's renderers and the env."""
        self.perception.close()
        super().close()


def wrap_perception(env: gym.Env, level: int, path: str | None = None,
                    settings: dict[str, Any] | None = None,
                    velocity: str = "perceived") -> PerceptionWrapper:
    """``PerceptionWrapper(env, level, path, settings, velocity)``.

    Picklable with ``functools.partial``. In a vector env's worker process torch runs on one
    thread.
    """
    if level == 2:
        from equigym.modules.common import one_thread_in_workers

        one_thread_in_workers()
    return PerceptionWrapper(env, level, path, settings, velocity)


def perception_wrapper(level: int | None, path: str | os.PathLike | None = None,
                       settings: dict[str, Any] | None = None,
                       velocity: str = "perceived") -> Callable[[gym.Env], gym.Env] | None:
    """The per-env wrapper for a perception level (``None``: no wrapper).

    ``train.py --perception`` and the evaluator of such a run both use it.
    """
    if level is None:
        return None
    make_perception(level, None if path is None else str(path), **(settings or {}))  # check now
    return functools.partial(wrap_perception, level=level,
                             path=None if path is None else str(path),
                             settings=dict(settings or {}), velocity=velocity)


__all__ = ["PerceptionWrapper", "perception_wrapper", "wrap_perception"]

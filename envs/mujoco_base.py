"""Base class for equigym's MuJoCo envs: model loading, action checks, stepping, rendering.

Unlike Gymnasium's ``MujocoEnv`` it takes a compiled model (procedural models never touch the
disk), does not call ``mj_rnePostConstraint`` every step (no equigym observation reads
``cacc``/``cfrc``), and reports unstable physics instead of returning NaN.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from equigym.graph import GraphSpec, ObsBuffer

_DEFAULT_SIZE = 480  # px
_BADQPOS = int(mujoco.mjtWarning.mjWARN_BADQPOS)
_BADQVEL = int(mujoco.mjtWarning.mjWARN_BADQVEL)
_BADQACC = int(mujoco.mjtWarning.mjWARN_BADQACC)


def load_model(xml_file: str | os.PathLike) -> mujoco.MjModel:
    """Compile a MuJoCo XML file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If MuJoCo cannot parse or compile it (the message carries MuJoCo's reason).
    """
    path = Path(xml_file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"MuJoCo XML file not found: {str(path)!r}. Pass an existing path "
            "(relative paths are resolved against the current directory)."
        )
    try:
        return mujoco.MjModel.from_xml_path(str(path))
    except ValueError as err:  # mujoco raises ValueError for parse and compile errors
        raise ValueError(f"Could not load MuJoCo XML {str(path)!r}: {err}") from err


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` if it is a positive integer (not a bool), else a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_reset_options(options: dict[str, Any] | None, valid: set[str]) -> dict[str, Any]:
    """A copy of ``reset``'s ``options``; a ``ValueError`` names unknown keys and the valid ones."""
    options = dict(options or {})
    unknown = set(options) - valid
    if unknown:
        raise ValueError(f"Unknown reset option(s) {sorted(unknown)}; valid: {sorted(valid)}.")
    return options


def scene_frame(
    options: dict[str, Any], planar: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reset options ``scene_rotation`` and ``scene_translation``, validated.

    Identity and zero when absent.

    Args:
        options: The reset options.
        planar: ``None`` if the scene takes any rotation and translation; otherwise why it takes
            only rotations about the vertical and horizontal translations (for the error).

    Raises:
        ValueError: If the rotation is not a proper 3x3 rotation, the translation not 3 finite
            numbers, or either leaves the vertical of a planar scene.
    """
    rot, trans = np.eye(3), np.zeros(3)
    if "scene_rotation" in options:
        rot = np.asarray(options["scene_rotation"], dtype=np.float64)
        if rot.shape != (3, 3) or not np.isfinite(rot).all() or not np.allclose(
            rot @ rot.T, np.eye(3), atol=1e-9
        ) or np.linalg.det(rot) < 0:
            raise ValueError("reset option scene_rotation must be a proper 3x3 rotation matrix")
        if planar is not None and not (np.allclose(rot[2], (0, 0, 1), atol=1e-9)
                                       and np.allclose(rot[:, 2], (0, 0, 1), atol=1e-9)):
            raise ValueError(f"scene_rotation must be a rotation about the vertical ({planar})")
    if "scene_translation" in options:
        trans = np.asarray(options["scene_translation"], dtype=np.float64)
        if trans.shape != (3,) or not np.isfinite(trans).all():
            raise ValueError("reset option scene_translation must be 3 finite numbers (m)")
        if planar is not None and abs(trans[2]) > 0:
            raise ValueError(f"scene_translation must be horizontal, z = 0 ({planar})")
    return rot, trans


def rot_z(angle: float) -> np.ndarray:
    """Rotation by ``angle`` rad about the vertical."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(angle: float) -> np.ndarray:
    """Rotation by ``angle`` rad about the y axis."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix."""
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(mat, dtype=np.float64).ravel())
    return q


def check_kwargs(env_name: str, unknown: dict[str, Any], valid: list[str]) -> None:
    """Raise a ``ValueError`` naming unknown constructor kwargs and listing the valid ones."""
    if unknown:
        raise ValueError(
            f"{env_name} got unknown keyword argument(s) {sorted(unknown)}. "
            f"Valid arguments: {', '.join(sorted(valid))}."
        )


class GraphMujocoEnv(gym.Env):
    """A MuJoCo env whose observations follow a :class:`~equigym.graph.GraphSpec`.

    Subclasses build ``self.graph_spec`` and a matching :class:`~equigym.graph.ObsBuffer`, then
    implement ``step`` and ``reset``, using :meth:`_check_action` and :meth:`_simulate`.
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array", "depth_array"]}

    def __init__(
        self,
        model: mujoco.MjModel,
        frame_skip: int,
        graph_spec: GraphSpec,
        render_mode: str | None = None,
        width: int = _DEFAULT_SIZE,
        height: int = _DEFAULT_SIZE,
        camera_name: str | None = None,
        default_camera_config: dict[str, float] | None = None,
    ) -> None:
        if int(frame_skip) < 1:
            raise ValueError(f"frame_skip must be a positive integer, got {frame_skip!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of "
                f"{self.metadata['render_modes']} or None."
            )
        self.model = model
        self.data = mujoco.MjData(model)
        self.frame_skip = int(frame_skip)
        self.graph_spec = graph_spec
        self._obs = ObsBuffer(graph_spec)
        self.observation_space = graph_spec.observation_space()
        self.action_space = graph_spec.action_space()
        self._action_shape = self.action_space.shape
        self._action_low = self.action_space.low.astype(np.float64)
        self._action_high = self.action_space.high.astype(np.float64)
        # Instance-level metadata: the fps depends on the model's timestep.
        self.metadata = {**type(self).metadata, "render_fps": int(round(1.0 / self.dt))}
        self.render_mode = render_mode
        self._render_args = (width, height, camera_name, default_camera_config)
        self._renderer = None

    @property
    def dt(self) -> float:
        """Control period, s (``timestep × frame_skip``)."""
        return float(self.model.opt.timestep) * self.frame_skip

    def _check_action(self, action: Any) -> np.ndarray:
        """Validate an action's shape and values (clip with :meth:`_clip`).

        Returns:
            The action as a float array of the action space's shape (not clipped, not copied when
            it already is one: callers gather the entries they use, then clip those).

        Raises:
            ValueError: If the action has the wrong shape or holds NaN/inf; the env is untouched.
        """
        a = np.asarray(action)
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
        if a.shape != self._action_shape:
            if a.size == self._action_shape[0] and a.ndim <= 2:
                a = a.reshape(self._action_shape)
            else:
                raise ValueError(
                    f"Action has shape {a.shape}, expected {self._action_shape} "
                    f"(see env.unwrapped.graph_spec.action_layout() for what each entry drives)."
                )
        # Exact and warning-free (a sum or dot product would raise numpy overflow warnings for
        # huge finite actions, which are legal: they get clipped).
        if not np.isfinite(a).all():
            bad = np.flatnonzero(~np.isfinite(a))
            where = ", ".join(map(str, bad[:10].tolist())) + (", ..." if len(bad) > 10 else "")
            raise ValueError(
                f"Action holds {len(bad)} non-finite value(s) (NaN or inf) at indices [{where}]; "
                "the step was not taken. Check the policy output for NaNs."
            )
        return a

    def _clip(
        self, values: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None
    ) -> np.ndarray:
        """Clip ``values`` in place to ``[low, high]`` (default: the action space's bounds).

        Envs that use only some action entries pass those entries' bounds, gathered once.
        """
        np.maximum(values, self._action_low if low is None else low, out=values)
        return np.minimum(values, self._action_high if high is None else high, out=values)

    def _simulate(self) -> bool:
        """Advance ``frame_skip`` physics steps with the current ``data.ctrl``.

        Returns:
            ``True`` if the physics went unstable: MuJoCo's bad-qpos, bad-qvel or bad-qacc warning
            fired during the step (MuJoCo checks every substep, and resets the state when one
            fires). A state that passed those checks has finite, bounded kinematics, so the
            observation built from it is finite.
        """
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        w = self.data.warning.number  # one array of counts for all warning kinds
        if w[_BADQPOS] or w[_BADQVEL] or w[_BADQACC]:
            # MuJoCo's auto-reset clears the counters and sets the firing one to 1, so compare
            # with zero, and clear them here so that the next event is seen too.
            for kind in (_BADQPOS, _BADQVEL, _BADQACC):
                self.data.warning[kind].number = 0
            return True
        return False

    def _reset_data(self) -> None:
        """Full reset of the simulation state (qpos, qvel, act, warnings, …)."""
        mujoco.mj_resetData(self.model, self.data)

    # --- rendering -------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        """Render in the mode given at construction: ``rgb_array``, ``depth_array``, ``human``."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() was called without a render_mode; pass render_mode='rgb_array' "
                "(or 'depth_array', 'human') to gymnasium.make."
            )
            return None
        if self._renderer is None:
            from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer

            width, height, camera_name, cam_cfg = self._render_args
            camera_id = None if camera_name else -1
            if camera_name is not None and mujoco.mj_name2id(
                self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera_name
            ) < 0:
                raise ValueError(f"The model has no camera named {camera_name!r}.")
            self._renderer = MujocoRenderer(
                self.model, self.data, cam_cfg, width, height, 1000, camera_id, camera_name
            )
        return self._renderer.render(self.render_mode)

    def close(self) -> None:
        """Release the renderer (safe to call twice)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

"""Rigid manipulation of varied shapes with graph observations (after HEPi's rigid tasks)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from equigym.envs.manipulation.scene import (
    FRAME_SKIP,
    INSERTION_TARGET_Z,
    TASKS,
    Task,
    build_xml,
)
from equigym.envs.manipulation.shapes import (
    HEIGHT,
    MAX_BUILTIN_VERTICES,
    SHAPE_NAMES,
    SPLITS,
    Shape,
    get_shape,
    make_shape,
)
from equigym.envs.mujoco_base import (
    GraphMujocoEnv,
    check_kwargs,
    check_positive_int,
    check_reset_options,
    mat_to_quat,
    rot_y,
    rot_z,
    scene_frame,
)
from equigym.graph import ActionGroup, EdgeType, GraphSpec, NodeType

_G0 = 9.81  # m/s², scale of the gravity global vector
_XBODY = mujoco.mjtObj.mjOBJ_XBODY  # velocity at the body frame's origin (not its COM)
KNN = 3  # neighbours of each object node in the object-object edges
_WORKSPACE = 1.0  # m, half-width of the initial object xy range (Sliding, Insertion)
_TWO_AGENT_TARGET = np.array([-0.5, 0.0, 1.25])  # m, hole (target centroid) of the two-agent task
_TWO_AGENT_START = np.array([0.0, 0.0, 1.0])  # m, object start before the offset below
_TWO_AGENT_OFFSET_LOW = np.array([0.25, -0.75, 0.5])  # m
_TWO_AGENT_OFFSET_HIGH = np.array([0.75, 0.75, 1.25])  # m
_PUSH_START = np.array([-0.5, 0.0])  # m, centre of the pushing object's start range
_PUSH_RANGE = 0.5  # m, half-width of that range
_PUSH_BEHIND = 0.4  # m, pusher start behind the object (along -x)

# Free camera framing the workspace (planar tasks, insertion) or the floating two-agent scene.
_CAMERAS: dict[str, dict[str, Any]] = {
    "default": {"distance": 2.4, "elevation": -55.0, "azimuth": 90.0,
                "lookat": np.array([0.0, 0.0, 0.1])},
    "two_agents": {"distance": 2.2, "elevation": -20.0, "azimuth": 90.0,
                   "lookat": np.array([-0.3, 0.0, 1.5])},
}

OBJECT_SCALARS = ("interior_angle", "convex")
OBJECT_VECTORS = ("offset", "lin_vel", "ang_vel")
ACTUATOR_SCALARS = ("one",)
ACTUATOR_VECTORS = ("offset", "lin_vel")
_DESCRIPTIONS = {
    "interior_angle": "interior angle of the outline at the vertex / pi (above 1: concave)",
    "convex": "1 at convex outline vertices, 0 at concave ones",
    "offset": "position minus the matching point of the target pose (symmetry-nearest), m",
    "lin_vel": "velocity of the point, m/s",
    "ang_vel": "angular velocity of the object, rad/s",
    "one": "constant 1",
}


class RigidManipulationEnv(GraphMujocoEnv):
    r"""Slide, push or insert an extruded 2-D shape to a target pose.

    ## Description
    One env class, four registered tasks (``task=``), after the rigid tasks of HEPi (Hoang et
    al., "Geometry-aware RL for Manipulation of Varying Shapes and Deformable Objects", ICLR 2025,
    arXiv:2502.07005), on MuJoCo 4 instead of Isaac Sim:

    - ``equigym/Sliding-v0`` (``task="sliding"``): a suction gripper on the object commands a
      velocity (vertical part ignored) and a yaw rate; slide the object on the floor to a target
      pose.
    - ``equigym/Pushing-v0`` (``"pushing"``): a vertical rod pusher commands a velocity (vertical
      part ignored); push a 3 kg object to a target pose.
    - ``equigym/Insertion-v0`` (``"insertion"``): a suction gripper commands a 3-D velocity and a
      yaw rate; insert the object into a hole whose target centroid is 0.25 m up.
    - ``equigym/InsertionTwoAgents-v0`` (``"two_agents"``): two grippers on a free 6-DoF object
      command a 3-D velocity each; the whole scene is yawed and tilted by up to 90 degrees.

    The object is a shape from :mod:`~equigym.envs.manipulation.shapes` (14 built-ins, a
    ``"train"`` / ``"test"`` split, or your own polygon), extruded to 4 cm. Grippers are
    velocity-actuated joints (see :mod:`~equigym.envs.manipulation.scene`); yaw commands turn the
    object about its own centroid (the reference turns it about the env origin, which breaks
    translation equivariance). Friction cones are elliptic, so friction does not depend on the
    sliding direction.

    ## Observation (``env.unwrapped.graph_spec``)
    | node type | count | scalars | vectors (world frame) |
    |---|---|---|---|
    | ``object`` | outline vertices (``max_vertices``) | ``interior_angle``, ``convex`` | below |
    | ``actuator`` | grippers (1; 2 for ``two_agents``) | ``one`` | below |

    - ``object/vec``: ``offset`` (vertex minus the matching target vertex), ``lin_vel`` (point
      velocity), ``ang_vel`` (pseudovector, the object's).
    - ``actuator/vec``: ``offset`` (gripper minus its target point; zero for the pusher),
      ``lin_vel``.

    Positions (``*/pos``) are world-frame points: outline vertices at the object's mid-plane,
    gripper points. The target is not a node: it enters as the offsets, taken to the target pose
    *nearest under the shape's rotational symmetry* (a star has 5 equivalent target poses).

    | edge type | count | meaning |
    |---|---|---|
    | ``object-knn-object`` | ``3 * max_vertices`` | 3 nearest vertices (object frame) → vertex |
    | ``object-task-actuator`` | ``max_vertices * grippers`` | every vertex → every gripper |
    | ``actuator-agent-actuator`` | 2 (``two_agents`` only) | gripper ↔ gripper |

    Globals: vector ``gravity`` (``g / 9.81``), scalar ``time_left`` (share of the episode left:
    rewards weigh the final steps more, so the policy needs the clock). No vector is normalised
    per axis and no world-fixed direction other than gravity enters. Kinematics after a step are
    those MuJoCo computed at the start of the last physics substep (as in Gymnasium's MuJoCo
    envs).

    ## Action Space
    ``Box(-1, 1)``: each gripper's ``velocity`` (a 3-vector, x ``max_speed`` 1 m/s; entries
    ``3 g .. 3 g + 2``), then for Sliding and Insertion the ``yaw_rate`` (a pseudoscalar about
    the vertical through the object's centroid, x 3 rad/s; the last entry). ``action_mask`` is 0
    on the vertical velocity of the planar tasks (Sliding, Pushing), which is ignored. Each
    velocity is scaled down to length 1 if longer (a speed limit by length commutes with
    rotations; clipping per axis would not); the yaw rate is clipped to [-1, 1]. (SB3 clips
    actions to the Box before the env sees them, so a policy's equivariance carries over to the
    scene for velocity commands inside the unit cube.) NaN/inf or a wrong shape raise
    ``ValueError`` before anything is simulated.

    ## Rewards (terms in ``info["reward_<term>"]``, summing to the reward; each x ``dt`` 0.04 s)
    ``d`` = centroid distance to the target, m; ``theta`` = orientation error, rad, minimised over
    the shape's symmetry; ``dz`` = height error (Insertion).

    - ``pose``: ``-0.8 (f_d d + w_rot f_theta theta + w_z |dz|)``; ``w_rot`` 0.5 (Sliding,
      Insertion) or 0.1; ``w_z`` 0.5 for Insertion; ``f = 1`` except in the last steps (Sliding,
      Insertion, two-agent: last 2 steps, ``f_d = 5``, ``f_theta`` 5 / 5 / 7.5; Pushing: last 5,
      both 10).
    - ``ctrl`` (Sliding): ``-0.1 (|a_v| + |a_yaw|)`` on the normalised (length-limited) action.
    - ``rate`` (Sliding): ``-2e-3 sum (a_t - a_t-1)^2`` over the used action entries.
    - ``contact`` (Pushing): ``-0.2 |p_object - p_pusher|`` (horizontal).

    ``info["is_success"]``: ``d`` and ``theta`` within the task's tolerances (Sliding 2 cm / 0.1
    rad, Pushing 5 cm / 0.35 rad, both insertions 1 cm / 0.1 rad: the object is in the hole).

    ## Starting State
    As HEPi's task table: Sliding and Insertion draw the object xy in ``U[-1, 1]^2``
    (Insertion: height ``1 + U[0, 0.5]`` m), the yaw in
    ``U[-pi, pi]``; the target sits at the origin (Insertion: centroid 0.25 m up, in the fixture)
    with a random yaw. Pushing draws the object at ``(-0.5, 0) + U[-0.5, 0.5]^2`` with the pusher
    0.4 m behind it along -x. The two-agent task puts the hole at ``(-0.5, 0, 1.25)``, the object
    at ``(0, 0, 1) + U([0.25, -0.75, 0.5], [0.75, 0.75, 1.25])``, random yaws, then rotates the
    whole scene about the hole by ``Rz(U[-pi, pi]) Ry(U[-pi/2, 0])``. ``reset(options=...)``:
    ``shape`` (a name from the env's pool), ``scene_rotation`` (3x3) and ``scene_translation``
    (m) applied on top of the sampled scene (planar tasks: rotations about the vertical and
    horizontal translations only; the two-agent task also rotates gravity).

    ## Episode End
    No termination (fixed length, as the reference). Truncation after 100 steps, or on unstable
    physics (``info["sim_unstable"]``: MuJoCo's bad-qpos/qvel/qacc warning; the step returns the
    last finite observation, scored by the last finite pose, with ``is_success`` False).

    ## Arguments
    | argument | default | description |
    |---|---|---|
    | ``task`` | per id | ``"sliding"``, ``"pushing"``, ``"insertion"``, ``"two_agents"`` |
    | ``shape`` | ``"train"`` | name, list of names, ``"train"``, ``"test"``, or polygon (m) |
    | ``max_vertices`` | 12 (most of any built-in) | pad the object nodes to this many |
    | ``episode_steps`` | 100 | control steps per episode |
    | ``render_mode``, ``width``, ``height``, ``camera_name`` | | rendering |

    ## Version History
    - v0: first release (gymnasium 1.4, MuJoCo 4).
    """

    def __init__(
        self,
        task: str = "sliding",
        shape: str | Sequence[str] | Sequence[Sequence[float]] = "train",
        max_vertices: int | None = None,
        episode_steps: int | None = None,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_kwargs(type(self).__name__, kwargs, _ARGUMENTS)
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r}; choose one of {sorted(TASKS)}.")
        self.task: Task = TASKS[task]
        self.shapes: dict[str, Shape] = _resolve_shapes(shape)
        largest = max(s.n_vertices for s in self.shapes.values())
        if max_vertices is None:
            max_vertices = max(MAX_BUILTIN_VERTICES, largest)
        if isinstance(max_vertices, bool) or not isinstance(max_vertices, int | np.integer):
            raise ValueError(f"max_vertices must be an integer, got {max_vertices!r}")
        if max_vertices < largest:
            raise ValueError(
                f"max_vertices={max_vertices} is smaller than the {largest} outline vertices of "
                "the largest shape; pass max_vertices >= that."
            )
        if episode_steps is None:
            episode_steps = self.task.episode_steps
        self.episode_steps = check_positive_int("episode_steps", episode_steps)
        self.max_vertices = int(max_vertices)
        self._models: dict[str, mujoco.MjModel] = {}
        first = next(iter(self.shapes))
        model = self._model_for(first)
        t = self.task
        super().__init__(
            model,
            FRAME_SKIP,
            make_spec(t, self.max_vertices),
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name=camera_name,
            default_camera_config=_CAMERAS.get(t.name, _CAMERAS["default"]),
        )
        self._datas: dict[str, mujoco.MjData] = {first: self.data}
        # Action entries used (the vertical velocity of planar tasks is ignored) and their scales.
        n = self.task.actuators
        per = 4 if t.yaw else 3
        used = np.ones((n, per), dtype=bool)
        if t.planar:
            used[:, 2] = False
        self._used = np.flatnonzero(used.ravel())
        self._obs.views["action_mask"][:] = used.ravel()
        scale = np.full((n, per), t.max_speed)
        if t.yaw:
            scale[:, 3] = t.max_yaw_rate
        self._scale = scale.ravel()[self._used]
        # Rows of the used entries that form each gripper's velocity (for the speed limit).
        lin = used.copy()
        if t.yaw:
            lin[:, 3] = False
        self._lin_rows = np.flatnonzero(lin[used]).reshape(n, -1)
        # Per-entry clipping only for the yaw rate: velocities get the length limit in step()
        # alone (clipping x, y, z separately first would bend a rotated command).
        low, high = self._action_low[self._used].copy(), self._action_high[self._used].copy()
        low[self._lin_rows.ravel()], high[self._lin_rows.ravel()] = -np.inf, np.inf
        self._bounds = (low, high)
        self._prev_action = np.zeros(len(self._used))
        self._obs.views["actuator/x"][:] = 1.0
        self._obs.views["actuator/mask"][:] = 1.0
        self.shape: Shape = self.shapes[first]
        self._set_shape(first)
        self._step = 0
        self._gravity = np.array([0.0, 0.0, -_G0])

    # --- models -----------------------------------------------------------------------------
    def _model_for(self, name: str) -> mujoco.MjModel:
        if name not in self._models:
            self._models[name] = mujoco.MjModel.from_xml_string(
                build_xml(self.task, self.shapes[name])
            )
        return self._models[name]

    def _set_shape(self, name: str) -> None:
        """Switch model, data and the shape-dependent (constant) parts of the observation."""
        if name != self.shape.name or not hasattr(self, "_ids"):
            self.close()  # the renderer belongs to the old model
        self.shape = self.shapes[name]
        self.model = self._model_for(name)
        if name not in self._datas:
            self._datas[name] = mujoco.MjData(self.model)
        self.data = self._datas[name]
        m, shape, v = self.model, self.shape, self._obs.views
        n = shape.n_vertices
        self._ids = {
            "object": m.body("object").id,
            "target": m.body_mocapid[m.body("target").id],
            "fixture": m.body_mocapid[m.body("fixture").id] if self.task.fixture else -1,
            "grips": [m.site(f"grip{g}").id for g in range(self.task.actuators)],
            "pusher": m.body("pusher").id if self.task.name == "pushing" else -1,
        }
        if self.task.name == "pushing":  # the pusher's x, y slides: qpos and qvel addresses
            j = m.joint("pusher_x")
            self._pusher_qpos, self._pusher_qvel = int(j.qposadr[0]), int(j.dofadr[0])
        self._local = shape.vertices_3d()  # (n, 3) object frame
        self._grip_local = np.array([m.site_pos[s] for s in self._ids["grips"]])
        x = v["object/x"]
        x[:] = 0.0
        x[:n, 0] = shape.interior_angles / math.pi
        x[:n, 1] = shape.interior_angles <= math.pi + 1e-9  # straight (pi) counts as convex
        v["object/mask"][:] = 0.0
        v["object/mask"][:n] = 1.0
        v["object/pos"][:] = 0.0
        v["object/vec"][:] = 0.0
        # kNN in the object frame: rigid, so the edges are constant (ties broken by index).
        k = min(KNN, n - 1)
        dist = np.linalg.norm(self._local[:, None] - self._local[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        nbr = np.argsort(dist, axis=1, kind="stable")[:, :k]
        idx, mask = v["object-knn-object/index"], v["object-knn-object/mask"]
        idx[:] = 0.0
        mask[:] = 0.0
        idx[0, : n * k] = nbr.ravel()
        idx[1, : n * k] = np.repeat(np.arange(n), k)
        mask[: n * k] = 1.0
        n_act = self.task.actuators
        idx, mask = v["object-task-actuator/index"], v["object-task-actuator/mask"]
        idx[:] = 0.0
        mask[:] = 0.0
        idx[0, : n * n_act] = np.tile(np.arange(n), n_act)
        idx[1, : n * n_act] = np.repeat(np.arange(n_act), n)
        mask[: n * n_act] = 1.0
        if n_act > 1:
            src, tgt = np.nonzero(~np.eye(n_act, dtype=bool))
            v["actuator-agent-actuator/index"][:] = np.stack([src, tgt])
            v["actuator-agent-actuator/mask"][:] = 1.0
        self._n_vertices = n
        self._v_obj_pos = v["object/pos"][:n]
        self._v_obj_vec = v["object/vec"][:n].reshape(n, 9)
        self._v_act_vec = v["actuator/vec"].reshape(n_act, 6)
        # Points fixed in the object: outline vertices, then gripper points (suction, two-agent).
        grips = self._grip_local if self.task.name != "pushing" else np.zeros((0, 3))
        self._points = np.vstack([self._local, grips])
        self._points_out = np.zeros((len(self._points), 12))
        self._mat = np.zeros((3, 9))
        self._bias = np.zeros(12)
        # Symmetry rotations of the outline about its local z axis.
        sym = shape.symmetry
        self._sym = np.stack([rot_z(2 * math.pi * j / sym) for j in range(sym)])
        self._vel6 = np.zeros(6)

    # --- geometry ---------------------------------------------------------------------------
    def _nearest_target(self, rot: np.ndarray) -> tuple[int, float]:
        """Index of the symmetry-equivalent target orientation nearest ``rot``, and the angle."""
        # trace(R^T C) for every candidate C: one (n, 9) @ (9,) product.
        tr = self._target_rots9 @ rot.reshape(9)
        j = int(tr.argmax())
        cos = min(1.0, max(-1.0, 0.5 * (float(tr[j]) - 1.0)))
        return j, math.acos(cos)

    def _errors(self) -> tuple[float, float, float]:
        """Distance, symmetry-aware orientation error and height error as of the last obs."""
        return self._err

    # --- observation ------------------------------------------------------------------------
    def _fill_obs(self) -> None:
        """Write the dynamic features into the observation buffer (and the pose errors).

        Every point (outline vertices, then gripper points, all fixed in the object) gets its
        world position, offset to the target pose and velocity from one matrix product:
        ``[p, p - p_t, v_p] = local @ [R^T | R^T - R_t^T | R^T [w]_x^T] + [c, c - c_t, v]``.
        """
        d, b = self.data, self._ids["object"]
        c = d.xpos[b]
        rot = d.xmat[b].reshape(3, 3)
        j, theta = self._nearest_target(rot)
        mujoco.mj_objectVelocity(self.model, d, _XBODY, b, self._vel6, 0)
        wx, wy, wz = self._vel6[:3].tolist()
        mat, bias = self._mat, self._bias
        rot_t = rot.T
        mat[:, 0:3] = rot_t
        np.subtract(rot_t, self._target_rots_t[j], out=mat[:, 3:6])
        # R^T [w]_x^T: rows of R^T times the transposed cross-product matrix of w.
        np.matmul(rot_t, np.array([[0.0, wz, -wy], [-wz, 0.0, wx], [wy, -wx, 0.0]]),
                  out=mat[:, 6:9])
        bias[0:3] = c
        np.subtract(c, self._target_pos, out=bias[3:6])
        bias[6:12] = self._vel6[[3, 4, 5, 0, 1, 2]]
        out = self._points_out
        np.matmul(self._points, mat, out=out[:, :9])
        out[:, 9:12] = 0.0
        out += bias
        n = self._n_vertices
        self._v_obj_pos[:] = out[:n, 0:3]
        self._v_obj_vec[:] = out[:n, 3:12]
        views = self._obs.views
        if self._ids["pusher"] >= 0:
            views["actuator/pos"][0] = d.site_xpos[self._ids["grips"][0]]
            views["actuator/vec"][0, 1, :2] = d.qvel[self._pusher_qvel : self._pusher_qvel + 2]
        else:
            views["actuator/pos"][:] = out[n:, 0:3]
            self._v_act_vec[:] = out[n:, 3:9]
        views["global/x"][0] = (self.episode_steps - self._step) / self.episode_steps
        dx, dy, dz = bias[3:6].tolist()
        self._err = (math.sqrt(dx * dx + dy * dy + dz * dz), theta, abs(dz))

    # --- rewards ----------------------------------------------------------------------------
    def _final(self) -> bool:
        return self._step > self.episode_steps - self.task.final_steps

    def _reward_pose(self, dist: float, theta: float, dz: float) -> float:
        t = self.task
        fd, fr = (t.final_pos, t.final_rot) if self._final() else (1.0, 1.0)
        return -t.w_pos * (fd * dist + t.w_rot * fr * theta + t.w_z * dz) * self.dt

    def _reward_ctrl(self, active: np.ndarray) -> float:
        if not self.task.w_ctrl:
            return 0.0
        lin = float(np.linalg.norm(active[:-1])) if self.task.yaw else float(np.linalg.norm(active))
        ang = abs(float(active[-1])) if self.task.yaw else 0.0
        return -self.task.w_ctrl * (lin + ang) * self.dt

    def _reward_rate(self, active: np.ndarray) -> float:
        if not self.task.w_rate:
            return 0.0
        diff = active - self._prev_action
        return -self.task.w_rate * float(diff @ diff) * self.dt

    def _reward_contact(self) -> float:
        if not self.task.w_contact:
            return 0.0
        d = self.data
        gap = d.xpos[self._ids["object"], :2] - d.xpos[self._ids["pusher"], :2]
        return -self.task.w_contact * math.sqrt(float(gap @ gap)) * self.dt

    def _get_rew(self, active: np.ndarray) -> tuple[float, dict[str, float]]:
        """Reward and its terms; ``active`` holds the clipped, used action entries."""
        dist, theta, dz = self._errors()
        terms = {
            "reward_pose": self._reward_pose(dist, theta, dz),
            "reward_ctrl": self._reward_ctrl(active),
            "reward_rate": self._reward_rate(active),
            "reward_contact": self._reward_contact(),
        }
        t = self.task
        info = {"distance": dist, "orientation_error": theta,
                "is_success": bool(dist <= t.success_pos and theta <= t.success_rot)}
        return sum(terms.values()), {**terms, **info}

    # --- episode ----------------------------------------------------------------------------
    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Advance one control step (0.04 s); see the class docstring."""
        active = self._clip(self._check_action(action)[self._used], *self._bounds)
        # Speed limit by length, not per axis: a box clip would not commute with rotations.
        lin = active[self._lin_rows]
        norm2 = (lin * lin).sum(axis=1)
        if norm2.max() > 1.0:
            active[self._lin_rows] = lin / np.maximum(np.sqrt(norm2), 1.0)[:, None]
        self.data.ctrl[:] = active * self._scale
        self._step += 1
        unstable = self._simulate()
        if unstable:
            # MuJoCo has reset the state: keep the last finite observation and score the step
            # by the last known pose (a blow-up must not look like a good or a free step).
            obs = self._obs.snapshot()
            reward, info = self._get_rew(active)
            reward -= info["reward_contact"]
            info["reward_contact"] = 0.0
            info["is_success"] = False
        else:
            self._fill_obs()
            obs = self._obs.snapshot()
            reward, info = self._get_rew(active)
        self._prev_action = active
        info["sim_unstable"] = unstable
        info["shape"] = self.shape.name
        truncated = unstable or self._step >= self.episode_steps
        if self.render_mode == "human":
            self.render()
        return obs, reward, False, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Sample a shape from the pool and a scene (see the class docstring's Starting State).

        Args:
            seed: Seed for the env's random generator.
            options: Optional ``{"shape": name, "scene_rotation": R, "scene_translation": t}``.
        """
        super().reset(seed=seed)
        options = check_reset_options(options, {"shape", "scene_rotation", "scene_translation"})
        rng = self.np_random
        names = list(self.shapes)
        name = names[int(rng.integers(len(names)))]  # always drawn: options keep the stream
        if "shape" in options:
            name = options["shape"]
            if name not in self.shapes:
                raise ValueError(
                    f"reset option shape={name!r} is not in this env's pool {names}; "
                    "make the env with shape= covering it."
                )
        rot_s, trans_s = self._scene_frame(options)
        self._set_shape(name)
        m, d, t = self.model, self.data, self.task
        self._reset_data()
        obj_pos, obj_rot, tgt_pos, tgt_rot, pusher = self._sample_scene(rng)
        # The extra scene transform (tests, augmentation) acts on everything, gravity included.
        obj_pos, tgt_pos = rot_s @ obj_pos + trans_s, rot_s @ tgt_pos + trans_s
        obj_rot, tgt_rot = rot_s @ obj_rot, rot_s @ tgt_rot
        m.opt.gravity[:] = rot_s @ self._gravity
        self._obs.views["global/vec"][0] = m.opt.gravity / _G0
        self._target_pos = tgt_pos
        self._target_rots = np.einsum("ij,sjk->sik", tgt_rot, self._sym)
        self._target_rots9 = self._target_rots.reshape(-1, 9).copy()
        self._target_rots_t = self._target_rots.transpose(0, 2, 1).copy()
        ids = self._ids
        d.mocap_pos[ids["target"]] = tgt_pos
        d.mocap_quat[ids["target"]] = mat_to_quat(tgt_rot)
        if ids["fixture"] >= 0:
            d.mocap_pos[ids["fixture"]] = tgt_pos
            d.mocap_quat[ids["fixture"]] = mat_to_quat(tgt_rot)
        if t.name == "two_agents":
            d.qpos[:3] = obj_pos
            d.qpos[3:7] = mat_to_quat(obj_rot)
        else:
            yaw = math.atan2(obj_rot[1, 0], obj_rot[0, 0])
            d.qpos[:4] = (*obj_pos[:2], obj_pos[2], yaw)
            if t.name == "pushing":
                pusher = rot_s @ pusher + trans_s
                d.qpos[self._pusher_qpos : self._pusher_qpos + 2] = pusher[:2]
        mujoco.mj_forward(m, d)
        self._step = 0
        self._prev_action = np.zeros(len(self._used))
        self._fill_obs()
        dist, theta, _ = self._errors()
        info = {"shape": name, "distance": dist, "orientation_error": theta,
                "is_success": bool(dist <= t.success_pos and theta <= t.success_rot)}
        if self.render_mode == "human":
            self.render()
        return self._obs.snapshot(), info

    def _scene_frame(self, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The optional extra scene rotation and translation, validated."""
        planar = None if self.task.name == "two_agents" else (
            f"{self.task.name}: the floor and gravity are fixed; only the two-agent task moves "
            "freely")
        return scene_frame(options, planar)

    def _sample_scene(self, rng: np.random.Generator) -> tuple:
        """Canonical object pose, target pose and pusher position (see Starting State)."""
        t, h = self.task, HEIGHT / 2
        yaw_obj, yaw_tgt = rng.uniform(-np.pi, np.pi, 2)
        pusher = np.zeros(3)
        if t.name == "sliding":
            obj = np.r_[rng.uniform(-_WORKSPACE, _WORKSPACE, 2), h]
            tgt = np.array([0.0, 0.0, h])
        elif t.name == "pushing":
            obj = np.r_[_PUSH_START + rng.uniform(-_PUSH_RANGE, _PUSH_RANGE, 2), h]
            tgt = np.array([0.0, 0.0, h])
            pusher = obj - np.array([_PUSH_BEHIND, 0.0, 0.0])
        elif t.name == "insertion":
            obj = np.r_[rng.uniform(-_WORKSPACE, _WORKSPACE, 2), 1.0 + rng.uniform(0.0, 0.5)]
            tgt = np.array([0.0, 0.0, INSERTION_TARGET_Z])
        else:
            offset = rng.uniform(_TWO_AGENT_OFFSET_LOW, _TWO_AGENT_OFFSET_HIGH)
            tilt = rot_z(rng.uniform(-np.pi, np.pi)) @ rot_y(rng.uniform(-np.pi / 2, 0.0))
            tgt = _TWO_AGENT_TARGET.copy()
            obj = tgt + tilt @ (_TWO_AGENT_START + offset - tgt)
            return obj, tilt @ rot_z(yaw_obj), tgt, tilt @ rot_z(yaw_tgt), pusher
        return obj, rot_z(yaw_obj), tgt, rot_z(yaw_tgt), pusher


_ARGUMENTS = ["task", "shape", "max_vertices", "episode_steps", "render_mode", "width", "height",
              "camera_name"]


def _resolve_shapes(shape: Any) -> dict[str, Shape]:
    """The env's shape pool from ``shape=`` (a name, names, a split, a polygon or a Shape)."""
    if isinstance(shape, Shape):
        return {shape.name: shape}
    if isinstance(shape, str):
        names = SPLITS.get(shape, (shape,))
        return {n: get_shape(n) for n in names}
    if isinstance(shape, Sequence | np.ndarray) and len(shape) > 0:
        items = list(shape)
        if all(isinstance(s, str) for s in items):
            if len(set(items)) != len(items):
                raise ValueError(f"shape list repeats a name: {items}")
            return {n: get_shape(n) for n in items}
        custom = make_shape(shape)
        return {custom.name: custom}
    raise ValueError(
        f"shape must be a name ({', '.join(SHAPE_NAMES)}), a list of names, 'train', 'test', "
        f"or a polygon [(x, y), ...] in metres; got {shape!r}"
    )


def make_spec(task: Task, max_vertices: int) -> GraphSpec:
    """The graph spec of ``task`` with object nodes padded to ``max_vertices``."""
    n_act = task.actuators
    edges = [
        EdgeType("object", "knn", "object", KNN * max_vertices),
        EdgeType("object", "task", "actuator", max_vertices * n_act),
    ]
    if n_act > 1:
        edges.append(EdgeType("actuator", "agent", "actuator", n_act * (n_act - 1)))
    symmetry = (
        "rotations about gravity and horizontal translations"
        if task.name != "two_agents"
        else "rotations about gravity and translations; any rotation with gravity rotated too"
    )
    return GraphSpec(
        node_types=(
            NodeType("object", max_vertices, OBJECT_SCALARS, OBJECT_VECTORS,
                     ("vector", "vector", "pseudovector"), _DESCRIPTIONS),
            NodeType("actuator", n_act, ACTUATOR_SCALARS, ACTUATOR_VECTORS,
                     ("vector", "vector"), _DESCRIPTIONS),
        ),
        edge_types=tuple(edges),
        global_vector_names=("gravity",),
        global_vector_kinds=("vector",),
        global_scalar_names=("time_left",),
        actions=tuple(_actions(task)),
        symmetry=symmetry,
        gravity_channel=0,
    )


def _actions(task: Task) -> list[ActionGroup]:
    """Velocity (vector) per gripper, then the yaw rate (pseudoscalar) where the task has one.

    Groups index nodes of one type contiguously, so a task with a yaw rate lays out
    ``[v_0 (3), ..., v_n (3), yaw_0, ..., yaw_n]``; with one gripper that is ``[vx, vy, vz, yaw]``.
    """
    groups = [ActionGroup("actuator", 3, "vector", ("vx", "vy", "vz"))]
    if task.yaw:
        groups.append(
            ActionGroup("actuator", 1, "pseudoscalar", ("yaw_rate",), offset=3 * task.actuators)
        )
    return groups


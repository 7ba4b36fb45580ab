"""Morphology-agnostic 3D locomotion with graph observations (after 3D-SGRL)."""

from __future__ import annotations

import math
import os
from typing import Any

import mujoco
import numpy as np

from equigym.envs.locomotion.morphologies import (
    FAMILIES,
    LIMB_TYPES,
    SPAWN_CLEARANCE,
    build_xml,
    parse_morphology,
)
from equigym.envs.locomotion.robot import HINGES_PER_NODE, Robot, parse_robot
from equigym.envs.mujoco_base import GraphMujocoEnv, check_kwargs, load_model
from equigym.graph import ActionGroup, EdgeType, GraphSpec, NodeType

_G0 = 9.81  # m/s², scale of the gravity global vector
_EXTERNAL_HEALTHY_Z = 0.3  # fraction of the spawn height below which an external robot has fallen
_EXTERNAL_FRAME_SKIP = 4

SCALAR_NAMES: tuple[str, ...] = (
    *(f"angle_{a}" for a in "xyz"),
    *(f"range_frac_{a}" for a in "xyz"),
    *(f"range_lo_{a}" for a in "xyz"),
    *(f"range_hi_{a}" for a in "xyz"),
    *(f"hinge_{a}" for a in "xyz"),
    *(f"actuated_{a}" for a in "xyz"),
    "height",
    *(f"limb_{t}" for t in LIMB_TYPES),
)
VECTOR_NAMES: tuple[str, ...] = ("rel_pos", "lin_vel", "ang_vel", "axis_x", "axis_y", "axis_z")
_VECTOR_KINDS = ("vector", "vector", "pseudovector", "pseudovector", "pseudovector", "pseudovector")
_DESCRIPTIONS = {
    "angle_*": "hinge angle, rad (0 for empty slots)",
    "range_frac_*": "(angle - lo) / (hi - lo), in [0, 1] within the joint range",
    "range_lo_*": "lower joint limit, rad (-pi if unlimited or empty)",
    "range_hi_*": "upper joint limit, rad (pi if unlimited or empty)",
    "hinge_*": "1 if the slot holds a hinge",
    "actuated_*": "1 if a motor drives the slot's hinge",
    "height": "body origin height above the floor plane z = 0, m",
    "limb_*": "limb-type one-hot, from the body name",
    "rel_pos": "body origin minus root origin, m",
    "lin_vel": "velocity of the body origin, m/s (unclipped)",
    "ang_vel": "angular velocity, rad/s",
    "axis_*": "world-frame unit axis of the slot's hinge (zero for empty slots)",
}
_HEIGHT = SCALAR_NAMES.index("height")
# (w x r)_a = sum_jk eps_ajk w_j r_k: the Levi-Civita symbol as a (9, 3) matrix over (j, k).
_LEVI_CIVITA = np.zeros((3, 3, 3))
_LEVI_CIVITA[0, 1, 2] = _LEVI_CIVITA[1, 2, 0] = _LEVI_CIVITA[2, 0, 1] = 1.0
_LEVI_CIVITA[0, 2, 1] = _LEVI_CIVITA[2, 1, 0] = _LEVI_CIVITA[1, 0, 2] = -1.0
_LEVI_CIVITA = _LEVI_CIVITA.transpose(1, 2, 0).reshape(9, 3)


class Locomotion3DEnv(GraphMujocoEnv):
    r"""3D locomotion for any morphology, towards a random target direction.

    ## Description
    A free-floating articulated robot walks on an infinite plane. Its initial heading is uniform
    on the circle and the target direction ``d`` (horizontal, unit) is drawn independently, so a
    policy must be *subequivariant*: equivariant to rotations about gravity, given ``g`` and ``d``
    (3D-SGRL, Chen et al., ICML 2023, arXiv:2305.18951). Reflections through vertical planes hold
    only up to swapping left and right limbs and flipping mid-plane hinges (not a transform of
    the observation alone).
    Built-in morphologies come from five families (``hopper``, ``walker``, ``humanoid``,
    ``cheetah`` after 3D-SGRL and equigym's own ``ant``), each limb with three hinges about its
    local x, y, z axes; ``xml_file=PATH`` loads any robot whose root body has a free joint and whose
    limbs have actuated hinges. Friction cones are elliptic (MuJoCo's default pyramidal cones make
    friction depend on the sliding direction, which breaks the symmetry).

    ## Observation (``env.unwrapped.graph_spec``)
    | node type | count | features |
    |---|---|---|
    | ``body`` | one per body, padded to ``max_nodes`` | see below |

    - scalars ``body/x`` (27): hinge angles, range fractions, joint limits, hinge and motor flags
      (3 slots each), height, limb-type one-hot (8); names in ``SCALAR_NAMES``.
    - position ``body/pos``: body origin, world frame, m.
    - vectors ``body/vec`` (6, world frame): ``rel_pos``, ``lin_vel`` (vectors); ``ang_vel``,
      ``axis_x``, ``axis_y``, ``axis_z`` (pseudovectors).

    | edge type | count | meaning |
    |---|---|---|
    | ``body-parent_to_child-body`` | ``max_nodes - 1`` | kinematic tree, parent → child |
    | ``body-child_to_parent-body`` | ``max_nodes - 1`` | kinematic tree, child → parent |

    Global vectors: ``gravity`` (``g / 9.81``, so (0, 0, -1)) and ``target_dir`` (``d``).
    Node 0 is the root (torso). Kinematic quantities after a step are those MuJoCo computed at the
    start of the last physics substep (as in Gymnasium's MuJoCo envs); joint angles are current.

    ## Action Space
    ``Box(-1, 1, (3 * max_nodes,))``: entry ``3 * node + k`` is the normalised control of hinge
    slot ``k`` of ``node`` (mapped linearly onto the actuator's ``ctrlrange``). It is a
    *scalar* (a torque about the hinge axis ``vec[node, 3 + k]``), so it does not change when the
    scene rotates. ``action_mask`` marks the entries that drive a motor; the others (torso,
    passive hinges, padding) are ignored. Out-of-range values are clipped; NaN/inf or a wrong shape
    raise ``ValueError`` before anything is simulated.

    ## Rewards (terms in ``info["reward_<term>"]``, summing to the reward)
    - ``progress``: ``forward_reward_weight * ((p_t+1 - p_t) · d) / dt``, ``p`` the root's xy.
    - ``alive``: ``alive_bonus`` per step.
    - ``ctrl``: ``-ctrl_cost_weight * sum(a_i^2)`` over actuated entries only.

    ## Starting State
    The default pose plus uniform noise of half-width ``reset_noise_scale`` on qpos and qvel
    (applied in the robot's own frame), then a yaw rotation by the heading ``U(-pi, pi)``. The
    target angle is ``U(-pi, pi)``, independent. ``reset(options={"heading": h, "target_angle":
    t})`` fixes either; with the same seed, a different heading gives exactly the rotated state.

    ## Episode End
    - Termination (if ``terminate_when_unhealthy``): root height outside ``healthy_z_range`` or
      tilt of the torso's up axis beyond ``max_tilt`` rad. Defaults per family (fractions of the
      spawn height); external XMLs: height below 30 % of the spawn height, no tilt limit.
    - Truncation: 1000 steps (registration), or unstable physics (``info["sim_unstable"]``:
      MuJoCo's bad-qpos, bad-qvel or bad-qacc warning, i.e. a non-finite or huge state; MuJoCo
      resets the state, the step returns the last finite observation and zero reward).

    ## Arguments
    | argument | default | description |
    |---|---|---|
    | ``morphology`` | family full body | built-in variant, e.g. ``"walker_6_right_foot"`` |
    | ``xml_file`` | ``None`` | path of your own MJCF (overrides ``morphology``) |
    | ``max_nodes`` | robot size | pad the graph to this many nodes (multi-morphology training) |
    | ``frame_skip`` | family (4) | physics steps per env step |
    | ``forward_reward_weight`` | 1.0 | weight of ``progress`` |
    | ``ctrl_cost_weight`` | family (1e-3) | weight of the control cost |
    | ``alive_bonus`` | family (1, cheetah 0) | reward per step |
    | ``healthy_z_range`` | family | (low, high) root height, m |
    | ``max_tilt`` | family | largest torso tilt, rad (``None``: unlimited) |
    | ``terminate_when_unhealthy`` | ``True`` | end the episode when unhealthy |
    | ``reset_noise_scale`` | family | qpos/qvel noise half-width |
    | ``random_heading`` / ``random_target`` | ``True`` | ``False`` gives heading 0 / target +x |
    | ``render_mode``, ``width``, ``height``, ``camera_name`` | | rendering |

    ## Version History
    - v0: first release (gymnasium 1.4, MuJoCo 4).
    """

    def __init__(
        self,
        morphology: str | None = None,
        xml_file: str | os.PathLike | None = None,
        max_nodes: int | None = None,
        frame_skip: int | None = None,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float | None = None,
        alive_bonus: float | None = None,
        healthy_z_range: tuple[float, float] | None = None,
        max_tilt: float | None = None,
        terminate_when_unhealthy: bool = True,
        reset_noise_scale: float | None = None,
        random_heading: bool = True,
        random_target: bool = True,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_kwargs(type(self).__name__, kwargs, _ARGUMENTS)
        _validate_arguments(
            morphology=morphology, xml_file=xml_file, max_nodes=max_nodes, frame_skip=frame_skip,
            healthy_z_range=healthy_z_range, max_tilt=max_tilt,
            reset_noise_scale=reset_noise_scale,
            weights={"forward_reward_weight": forward_reward_weight,
                     "ctrl_cost_weight": ctrl_cost_weight, "alive_bonus": alive_bonus},
        )  # fmt: skip
        if xml_file is not None:
            model = load_model(xml_file)
            self.xml = None
            self.morphology = os.path.splitext(os.path.basename(str(xml_file)))[0]
            family = None
        else:
            family, _ = parse_morphology(morphology or "walker_7_full")
            self.morphology = morphology or "walker_7_full"
            self.xml = build_xml(self.morphology)
            model = mujoco.MjModel.from_xml_string(self.xml)
        # Symmetric friction is part of the task definition, for external XMLs too.
        model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        robot = parse_robot(model, source=str(xml_file) if xml_file else self.morphology)
        self.robot = robot
        self.family = family.name if family else None
        n_max = robot.n if max_nodes is None else int(max_nodes)
        if n_max < robot.n:
            raise ValueError(
                f"max_nodes={max_nodes} is smaller than the robot's {robot.n} bodies "
                f"({self.morphology}); pass max_nodes >= {robot.n}."
            )
        spawn_z = float(model.qpos0[robot.root_qpos + 2])
        if frame_skip is None:
            frame_skip = family.frame_skip if family else _EXTERNAL_FRAME_SKIP
        super().__init__(
            model,
            frame_skip,
            _make_spec(n_max),
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name=camera_name,
            default_camera_config={
                "trackbodyid": int(robot.body_ids[0]),
                "distance": 4.0,
                "elevation": -20.0,
            },
        )
        self.forward_reward_weight = float(forward_reward_weight)
        self.ctrl_cost_weight = float(
            ctrl_cost_weight if ctrl_cost_weight is not None
            else (family.ctrl_cost_weight if family else 1e-3)
        )
        self.alive_bonus = float(
            alive_bonus if alive_bonus is not None else (family.alive_bonus if family else 1.0)
        )
        if healthy_z_range is None:
            if family is not None:
                healthy_z_range = tuple(f * spawn_z for f in family.healthy_z)
            elif spawn_z > 0:
                healthy_z_range = (_EXTERNAL_HEALTHY_Z * spawn_z, math.inf)
            else:
                raise ValueError(
                    f"The root of {self.morphology!r} starts at z = {spawn_z:g} m, so no default "
                    "healthy height range can be derived from it; pass healthy_z_range=(low, "
                    "high) in metres, or place the root above the floor in the XML."
                )
        self.healthy_z_range = (float(healthy_z_range[0]), float(healthy_z_range[1]))
        if max_tilt is None and family is not None:
            max_tilt = family.max_tilt
        self.max_tilt = None if max_tilt is None else float(max_tilt)
        self.terminate_when_unhealthy = bool(terminate_when_unhealthy)
        self.reset_noise_scale = float(
            reset_noise_scale if reset_noise_scale is not None
            else (family.reset_noise if family else 0.005)
        )
        self.random_heading = bool(random_heading)
        self.random_target = bool(random_target)

        # Body-frame "up" of the root at its default pose: tilt is measured against it.
        q0 = model.qpos0[robot.root_qpos + 3 : robot.root_qpos + 7]
        w, x, y, z = (q0 / np.linalg.norm(q0)).tolist()
        self._up_list = [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
        self._cos_tilt = -2.0 if self.max_tilt is None else math.cos(self.max_tilt)

        self._init_index_arrays(robot)
        self._init_constant_features(robot, n_max)
        self._target_xy = (1.0, 0.0)
        # Built-in bodies spawn 5 mm above the floor plane z = 0; reset noise (root height,
        # orientation, joint angles) could push geoms below it, so resets lift the robot back
        # (a vertical shift: it commutes with the random heading). External scenes may have no
        # floor at z = 0 and are left as their XML places them.
        self._robot_geoms = None
        if family is not None:
            geoms = np.flatnonzero(np.isin(model.geom_bodyid, robot.body_ids))
            # Built-in bodies are capsules and spheres (a sphere is a capsule of half-length 0):
            # lowest z = centre z - |R_zz| * half-length - radius, for all geoms at once.
            kinds = set(model.geom_type[geoms].tolist())
            assert kinds <= {mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_SPHERE}, kinds
            self._robot_geoms = geoms
            self._geom_half = model.geom_size[geoms, 1].copy()
            self._geom_radius = model.geom_size[geoms, 0].copy()

    # --- set-up -----------------------------------------------------------------------------
    def _init_index_arrays(self, robot: Robot) -> None:
        ids = robot.body_ids
        contiguous = bool(np.all(np.diff(ids) == 1))
        self._bodies = slice(int(ids[0]), int(ids[-1]) + 1) if contiguous else ids
        self._root_body = int(ids[0])
        self._n = robot.n
        self._rq = robot.root_qpos
        self._act_slot = robot.act_slot
        self._act_bounds = (self._action_low[robot.act_slot], self._action_high[robot.act_slot])
        lo, hi = self.model.actuator_ctrlrange.T
        limited = self.model.actuator_ctrllimited.astype(bool)
        self._ctrl_mid = np.where(limited, 0.5 * (lo + hi), 0.0)
        self._ctrl_half = np.where(limited, 0.5 * (hi - lo), 1.0)
        self._ctrl_identity = bool(np.all(self._ctrl_mid == 0) and np.all(self._ctrl_half == 1))

    def _init_constant_features(self, robot: Robot, n_max: int) -> None:
        v, n = self._obs.views, robot.n
        x = v["body/x"]
        x[:n, 6:9] = robot.hinge_range[..., 0]
        x[:n, 9:12] = robot.hinge_range[..., 1]
        x[:n, 12:15] = robot.hinge_present
        actuated = np.zeros(n * HINGES_PER_NODE)
        actuated[robot.act_slot] = 1.0
        x[:n, 15:18] = actuated.reshape(n, HINGES_PER_NODE)
        x[np.arange(n), _HEIGHT + 1 + robot.limb_type] = 1.0
        v["body/mask"][:n] = 1.0
        v["action_mask"][: n * HINGES_PER_NODE] = actuated
        child = np.arange(1, n)
        for key, (src, tgt) in (
            ("body-parent_to_child-body", (robot.parents[1:], child)),
            ("body-child_to_parent-body", (child, robot.parents[1:])),
        ):
            v[f"{key}/index"][0, : n - 1] = src
            v[f"{key}/index"][1, : n - 1] = tgt
            v[f"{key}/mask"][: n - 1] = 1.0
        v["global/vec"][0] = self.model.opt.gravity / _G0
        # Cached views of the dynamic parts (dict look-ups and slicing cost in the hot path).
        vec, x = v["body/vec"], v["body/x"]
        self._v_pos = v["body/pos"][:n]
        self._v_rel, self._v_lin, self._v_ang = vec[:n, 0], vec[:n, 1], vec[:n, 2]
        self._v_axes = vec[:n, 3:6]
        self._x_height = x[:n, _HEIGHT]
        x[:n, 3:6] = 0.5  # range fraction of empty slots (hinge slots overwrite theirs each step)
        self._vec_rows = vec.reshape(-1, 3)
        self._x_flat = x.reshape(-1)
        nodes, slots = np.nonzero(robot.hinge_present)
        n_vec, n_x = vec.shape[1], x.shape[1]
        self._jnt = robot.hinge_jnt[nodes, slots]
        self._jnt_qadr = robot.hinge_qadr[nodes, slots]
        self._jnt_lo = robot.hinge_range[nodes, slots, 0]
        self._jnt_inv_span = 1.0 / (robot.hinge_range[nodes, slots, 1] - self._jnt_lo)
        self._axis_rows = nodes * n_vec + 3 + slots
        # Fast path when the hinges fill slots (1..n-1) x (x, y, z) with consecutive joint ids
        # and qpos addresses (true for every built-in morphology).
        full = np.array_equal(
            nodes, np.repeat(np.arange(1, n), HINGES_PER_NODE)
        ) and np.array_equal(slots, np.tile(np.arange(HINGES_PER_NODE), n - 1))
        consecutive = bool(
            np.all(np.diff(self._jnt) == 1) and np.all(np.diff(self._jnt_qadr) == 1)
        )
        self._blocks = None
        if full and consecutive and n > 1:
            self._blocks = (
                slice(int(self._jnt[0]), int(self._jnt[-1]) + 1),
                slice(int(self._jnt_qadr[0]), int(self._jnt_qadr[-1]) + 1),
            )
            self._v_axes_block = vec[1:n, 3:6]
            self._x_angle_block = x[1:n, 0:3]
            self._x_frac_block = x[1:n, 3:6]
            self._jnt_lo = self._jnt_lo.reshape(n - 1, HINGES_PER_NODE)
            self._jnt_inv_span = self._jnt_inv_span.reshape(n - 1, HINGES_PER_NODE)
        self._angle_idx = nodes * n_x + slots
        self._frac_idx = nodes * n_x + 3 + slots

    # --- observation ----------------------------------------------------------------------
    def _fill_obs(self) -> None:
        """Write the dynamic features into the observation buffer (numpy only, no body loop)."""
        d = self.data
        xpos = d.xpos[self._bodies]
        cvel = d.cvel[self._bodies]
        self._v_pos[:] = xpos
        np.subtract(xpos, d.xpos[self._root_body], out=self._v_rel)
        # Velocity of each body origin: cvel's linear part is taken at the tree's subtree COM,
        # so add w x r, computed as (w r^T) : epsilon (two numpy calls; np.cross costs ~20 us).
        r = xpos - d.subtree_com[self._root_body]
        outer = cvel[:, :3, None] * r[:, None, :]
        np.add(cvel[:, 3:], outer.reshape(-1, 9) @ _LEVI_CIVITA, out=self._v_lin)
        self._v_ang[:] = cvel[:, :3]
        if self._blocks is not None:
            # Built-in morphologies: every non-root body has three hinges in MuJoCo's order, so
            # axes and angles are contiguous blocks (slice copies, no gather/scatter).
            jnt, qadr = self._blocks
            self._v_axes_block[:] = d.xaxis[jnt].reshape(self._v_axes_block.shape)
            q = d.qpos[qadr].reshape(self._x_angle_block.shape)
            self._x_angle_block[:] = q
            np.multiply(q - self._jnt_lo, self._jnt_inv_span, out=self._x_frac_block)
        else:
            # General robots: hinge data goes only into occupied slots; empty slots keep their
            # constant values (zero axis, zero angle, range fraction 0.5) written at construction.
            self._vec_rows[self._axis_rows] = d.xaxis[self._jnt]
            q = d.qpos[self._jnt_qadr]
            self._x_flat[self._angle_idx] = q
            q -= self._jnt_lo
            q *= self._jnt_inv_span
            self._x_flat[self._frac_idx] = q
        self._x_height[:] = xpos[:, 2]

    # --- rewards --------------------------------------------------------------------------
    def _reward_progress(self, xy_before: list[float], xy_after: list[float]) -> float:
        dx, dy = xy_after[0] - xy_before[0], xy_after[1] - xy_before[1]
        tx, ty = self._target_xy
        return self.forward_reward_weight * (dx * tx + dy * ty) / self.dt

    def _reward_alive(self) -> float:
        return self.alive_bonus

    def _reward_ctrl(self, active: np.ndarray) -> float:
        return -self.ctrl_cost_weight * float(active @ active)

    def _get_rew(
        self, xy_before: list[float], xy_after: list[float], active: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        """Reward and its terms; ``active`` holds the clipped actions of actuated slots."""
        progress = self._reward_progress(xy_before, xy_after)
        alive = self._reward_alive()
        ctrl = self._reward_ctrl(active)
        terms = {"reward_progress": progress, "reward_alive": alive, "reward_ctrl": ctrl}
        return progress + alive + ctrl, terms

    # --- episode --------------------------------------------------------------------------
    def _healthy(self, qpos: list[float]) -> bool:
        """Root height within ``healthy_z_range`` and tilt within ``max_tilt``.

        Args:
            qpos: The root's free-joint qpos (x, y, z, qw, qx, qy, qz) as Python floats.
        """
        z = qpos[2]
        if not self.healthy_z_range[0] < z < self.healthy_z_range[1]:
            return False
        w, x, y, zq = qpos[3:7]
        u0, u1, u2 = self._up_list
        up = 2 * (x * zq - w * y) * u0 + 2 * (y * zq + w * x) * u1 + (1 - 2 * (x * x + y * y)) * u2
        return up >= self._cos_tilt * (w * w + x * x + y * y + zq * zq)

    @property
    def is_healthy(self) -> bool:
        """Whether the robot is upright and at a healthy height now."""
        return self._healthy(self.data.qpos[self._rq : self._rq + 7].tolist())

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Advance one control step; see the class docstring for rewards and episode end."""
        # Only actuated entries matter: gather them (a copy), then clip those.
        active = self._clip(self._check_action(action)[self._act_slot], *self._act_bounds)
        d = self.data
        d.ctrl[:] = active if self._ctrl_identity else self._ctrl_mid + self._ctrl_half * active
        rq = self._rq
        xy_before = d.qpos[rq : rq + 2].tolist()
        unstable = self._simulate()
        if unstable:
            # The buffer still holds the last finite observation: return a fresh copy of it.
            obs, reward, healthy = self._obs.snapshot(), 0.0, False
            terms = dict.fromkeys(("reward_progress", "reward_alive", "reward_ctrl"), 0.0)
        else:
            self._fill_obs()
            obs = self._obs.snapshot()
            root = d.qpos[rq : rq + 7].tolist()
            reward, terms = self._get_rew(xy_before, root, active)
            healthy = self._healthy(root)
        terms["is_healthy"] = healthy
        terms["sim_unstable"] = unstable
        if self.render_mode == "human":
            self.render()
        return obs, reward, self.terminate_when_unhealthy and not healthy and not unstable, \
            unstable, terms

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset to a noisy default pose with a random heading and target direction.

        Args:
            seed: Seed for the env's random generator.
            options: Optional ``{"heading": rad, "target_angle": rad}``; unknown keys raise.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"heading", "target_angle"}
        if unknown:
            raise ValueError(
                f"Unknown reset option(s) {sorted(unknown)}; valid: 'heading', 'target_angle'."
            )
        m, d, rq, dof = self.model, self.data, self._rq, self.robot.root_dof
        self._reset_data()
        # One draw for all noise, one for both angles (always drawn, so the noise stream does
        # not depend on the options).
        noise = self.np_random.uniform(-self.reset_noise_scale, self.reset_noise_scale, m.nq + m.nv)
        heading, target = self.np_random.uniform(-np.pi, np.pi, 2).tolist()
        if not self.random_heading:
            heading = 0.0
        if not self.random_target:
            target = 0.0
        heading = _finite_option(options, "heading", heading)
        target = _finite_option(options, "target_angle", target)
        qpos = m.qpos0 + noise[: m.nq]
        qvel = noise[m.nq :]
        # Yaw the noisy default pose about the vertical through the origin: position and linear
        # velocity rotate; the free joint's angular velocity is in the body frame and stays.
        c, sn = math.cos(heading), math.sin(heading)
        px, py, pz, qw, qx, qy, qz = qpos[rq : rq + 7].tolist()
        inv = 1.0 / math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        qw, qx, qy, qz = qw * inv, qx * inv, qy * inv, qz * inv
        hc, hs = math.cos(heading / 2), math.sin(heading / 2)  # q_yaw = (hc, 0, 0, hs)
        qpos[rq : rq + 7] = (
            c * px - sn * py, sn * px + c * py, pz,
            hc * qw - hs * qz, hc * qx - hs * qy, hc * qy + hs * qx, hc * qz + hs * qw,
        )
        vx, vy = qvel[dof : dof + 2].tolist()
        qvel[dof : dof + 2] = (c * vx - sn * vy, sn * vx + c * vy)
        d.qpos[:] = qpos
        d.qvel[:] = qvel
        if self._robot_geoms is not None:
            mujoco.mj_kinematics(m, d)
            g = self._robot_geoms
            low = float(
                (d.geom_xpos[g, 2] - np.abs(d.geom_xmat[g, 8]) * self._geom_half
                 - self._geom_radius).min()
            )
            if low < SPAWN_CLEARANCE:
                d.qpos[rq + 2] += SPAWN_CLEARANCE - low
        mujoco.mj_forward(m, d)
        self._target_xy = (math.cos(target), math.sin(target))
        self._obs.views["global/vec"][1] = (*self._target_xy, 0.0)
        self._fill_obs()
        info = {"heading": heading, "target_angle": target, "morphology": self.morphology}
        if self.render_mode == "human":
            self.render()
        return self._obs.snapshot(), info


def _finite_option(options: dict[str, Any], name: str, default: float) -> float:
    """A reset option as a finite float (``default`` when absent)."""
    if name not in options:
        return default
    try:
        value = float(options[name])
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(
            f"reset option {name!r} must be a finite angle in rad, got {options[name]!r}"
        )
    return value


def _validate_arguments(
    morphology: Any,
    xml_file: Any,
    max_nodes: Any,
    frame_skip: Any,
    healthy_z_range: Any,
    max_tilt: Any,
    reset_noise_scale: Any,
    weights: dict[str, Any],
) -> None:
    """Raise one ``ValueError`` naming the first constructor argument that is not usable."""
    if xml_file is not None and morphology is not None:
        raise ValueError(
            "Pass either morphology= (a built-in robot) or xml_file= (your own), not both."
        )
    if morphology is not None and not isinstance(morphology, str):
        raise ValueError(f"morphology must be a name such as 'walker_7_full', got {morphology!r}")
    if xml_file is not None and not isinstance(xml_file, str | os.PathLike):
        raise ValueError(f"xml_file must be a path (str or os.PathLike), got {xml_file!r}")
    for name, value in (("max_nodes", max_nodes), ("frame_skip", frame_skip)):
        if value is not None and (not isinstance(value, int | np.integer) or isinstance(value, bool)
                                  or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("max_tilt", max_tilt), ("reset_noise_scale", reset_noise_scale),
                        *weights.items()):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
            math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if name in ("max_tilt", "reset_noise_scale") and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    if healthy_z_range is not None:
        try:
            low, high = (float(v) for v in healthy_z_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"healthy_z_range must be a pair (low, high) in metres, got {healthy_z_range!r}"
            ) from None
        if math.isnan(low) or math.isnan(high) or not low < high:
            raise ValueError(f"healthy_z_range needs low < high, got {healthy_z_range!r}")


def _make_spec(n_max: int) -> GraphSpec:
    return GraphSpec(
        node_types=(
            NodeType(
                name="body",
                count=n_max,
                scalar_names=SCALAR_NAMES,
                vector_names=VECTOR_NAMES,
                vector_kinds=_VECTOR_KINDS,
                descriptions=_DESCRIPTIONS,
            ),
        ),
        edge_types=(
            EdgeType("body", "parent_to_child", "body", max(n_max - 1, 1)),
            EdgeType("body", "child_to_parent", "body", max(n_max - 1, 1)),
        ),
        global_vector_names=("gravity", "target_dir"),
        global_vector_kinds=("vector", "vector"),
        actions=(
            ActionGroup(
                node_type="body",
                per_node=HINGES_PER_NODE,
                kind="scalar",
                channel_names=("hinge_x", "hinge_y", "hinge_z"),
                axis_channels=(3, 4, 5),
            ),
        ),
        symmetry=(
            "subequivariant: rotations about gravity and horizontal translations; gravity and "
            "the target direction are inputs. Reflections through vertical planes hold only "
            "with a left/right limb swap and mid-plane hinge sign flips"
        ),
        gravity_channel=0,
    )


_ARGUMENTS = [
    "morphology", "xml_file", "max_nodes", "frame_skip", "forward_reward_weight",
    "ctrl_cost_weight", "alive_bonus", "healthy_z_range", "max_tilt", "terminate_when_unhealthy",
    "reset_noise_scale", "random_heading", "random_target", "render_mode", "width", "height",
    "camera_name",
]
FAMILY_NAMES = tuple(FAMILIES)

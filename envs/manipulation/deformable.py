"""Rope and cloth on MuJoCo 4 flex: physics settings, target curves, cloth holes, env base class.

MuJoCo 4.0 removed ``composite`` and the cable plugin; ropes are ``<flexcomp dim="1">`` and cloth
``<flexcomp dim="2" type="direct">`` here. The physics choices, measured on MuJoCo 4.0.0
(``benchmarks/results/env_throughput.json`` and the notes below):

- **Inextensible edges by equality constraints** (``<edge equality="true"/>``), not flex
  elasticity. Edge equality runs under ``implicitfast`` at a 10 ms step (the reference's physics
  step). Flex *elasticity* needs ``integrator="discrete"``, adds 79 twist joints to the 80-point
  rod (nq 120 -> 319) and, in a prototype of the shaping task with its scripted controller, ran
  1,000-1,400 control steps/s against about 3,800 for the equality rope (2.6-3.6x slower),
  without shaping better (RMS error 0.64-1.28 m vs 0.47-0.63 m). For the cloth both cost about
  the same; one model is kept for both, and the reference's PBD cloth is near inextensible too
  (stretch stiffness 2e6). The mean edge strain is still measured (cloth reward).
- **Grippers = velocity servos on the gripped vertices' own slide joints.** Elastic flexes cannot
  be attached to mocap bodies in MuJoCo 4, and a separate gripper body ``connect``-ed to a vertex
  adds a soft constraint (lag, drift). Every flex vertex is a body with three world-aligned slide
  joints, so the gripped vertices get named joints and ``velocity`` actuators (force
  ``kv (v_cmd - v)``) after MuJoCo expands the ``flexcomp`` (:func:`compile_flex`). The law is the
  same along x, y and z, so it commutes with rotations; ``implicitfast`` integrates the servo's
  damping implicitly, so a stiff ``kv`` on a light vertex is stable.
- **Gripper gains are deliberately soft** (:data:`ROPE_KV` 5, :data:`CLOTH_KV` 5 N s/m). Edge
  equality constraints are soft constraints (time constant >= 2 physics steps), so a servo
  stronger than the flex simply stretches it: under full-speed random commands that change every
  step, the mean edge strain was 0.82 (rope, kv 50) and 1.37 (cloth, kv 20), against 0.06 and
  about 0.2 at the chosen gains. Coherent motions (the scripted controllers) keep the cloth's
  mean strain near 0.02.
- **No gravity**, as the reference's rope and cloth tasks. The rope moves in the horizontal plane
  ``z = ROPE_Z`` (its grippers' vertical velocity servo is held at zero); the cloth floats, so
  the cloth task is symmetric under every rotation.
- **Elliptic friction cones** (direction-independent friction), ``selfcollide="none"`` (no task
  folds), and a light velocity drag on every free vertex (:data:`ROPE_DRAG`,
  :data:`CLOTH_DRAG`): without gravity or
  floor contact nothing else stops a released rope drifting forever.
- **Full reset** through ``mj_resetData`` (qpos, qvel, warm-starts, warnings), then vertex
  positions written as slide displacements from the rest layout. Edge-equality flexes keep no
  other state (no ``plastic`` rod state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from equigym.envs.mujoco_base import GraphMujocoEnv, rot_y, rot_z, scene_frame

TIMESTEP = 0.01  # s, physics step (the reference's 0.01 s)
FRAME_SKIP = 2  # physics steps per control step: dt = 0.02 s, as the reference
ROPE_DRAG = 0.2  # 1/s, velocity damping per unit mass of every free rope vertex (air drag)
FRICTION = 0.5  # sliding friction of the flex-hanger contacts
ROPE_RADIUS = 0.025  # m
ROPE_MASS = 1.0  # kg, whole rope
ROPE_Z = 0.1  # m, height of the rope's horizontal plane
ROPE_KV = 5.0  # N s/m, gain of each rope gripper's velocity servo (see the strain note)
CLOTH_SIZE = 1.0  # m, side of the square cloth
CLOTH_GRID = 16  # vertices per side
CLOTH_MASS = 0.5  # kg
CLOTH_RADIUS = 0.005  # m, collision radius of the cloth's triangles
CLOTH_DRAG = 1.0  # 1/s, the same for the cloth (a sheet meets more air)
CLOTH_KV = 5.0  # N s/m, gain of each cloth gripper's velocity servo (see the strain note)
HOLE_RADIUS = 1.1  # grid cells: vertices this close to the hole centre are removed
HOLE_SEED = 2  # seed of the 40 hole positions (the reference's seed; equigym's own draw)
N_HOLES = 40
_MAX_SPEED = 1e3  # m/s, a vertex faster than this means the flex diverged

_UPPER = np.linspace(0.5 * np.pi, 1.5 * np.pi, 25)  # rad, the S's upper half circle
_LOWER = np.linspace(0.5 * np.pi, -0.5 * np.pi, 25)[1:]  # rad, its lower one
# Built-in rope targets, unit-free polylines (rescaled to the rope's length, resampled).
ROPE_TARGETS: dict[str, np.ndarray] = {
    # A W with five vertices (HEPi downloads the LASA "WShape" demo at runtime; equigym
    # synthesises it).
    "W": np.array([(-2.0, 1.0), (-1.0, -1.0), (0.0, 0.6), (1.0, -1.0), (2.0, 1.0)]),
    # U: two straight legs and a half circle.
    "U": np.concatenate([
        [(-1.0, 1.5)],
        np.stack([-np.cos(np.linspace(0, np.pi, 25)), -np.sin(np.linspace(0, np.pi, 25))], 1),
        [(1.0, 1.5)],
    ]),
    # S: two half circles, bulging to opposite sides.
    "S": np.concatenate([
        np.stack([np.cos(_UPPER), 1.0 + np.sin(_UPPER)], 1),
        np.stack([np.cos(_LOWER), -1.0 + np.sin(_LOWER)], 1),
    ]),
    # A 180-degree circular arc.
    "arc": np.stack([np.cos(np.linspace(0, np.pi, 40)), np.sin(np.linspace(0, np.pi, 40))], 1),
}


def resample_polyline(points: Any, n: int, length: float) -> np.ndarray:
    """``n`` points at equal arc length along a 2-D polyline rescaled to arc length ``length``.

    Raises:
        ValueError: If the polyline is not a finite (k >= 2, 2) array with non-zero length.
    """
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"target polyline must be a list of (x, y) points, got {points!r}"
        ) from err
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 2:
        raise ValueError(
            f"target polyline must have shape (k >= 2, 2): [(x, y), ...] in metres; got shape "
            f"{p.shape}"
        )
    if not np.isfinite(p).all():
        raise ValueError("target polyline holds NaN or inf")
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    if (seg < 1e-9).any():
        raise ValueError("target polyline repeats a point (zero-length segment); remove it")
    s = np.r_[0.0, np.cumsum(seg)]
    q = np.linspace(0.0, s[-1], n)
    out = np.stack([np.interp(q, s, p[:, 0]), np.interp(q, s, p[:, 1])], 1)
    return out * (length / s[-1])


# --- cloth --------------------------------------------------------------------------------------
def _draw_holes() -> tuple[tuple[int, int], ...]:
    """40 distinct hole centres on the grid cells ``8 +- 3`` (of 0..15), from :data:`HOLE_SEED`."""
    cells = [(i, j) for j in range(5, 12) for i in range(5, 12)]
    pick = np.random.default_rng(HOLE_SEED).choice(len(cells), N_HOLES, replace=False)
    return tuple(cells[k] for k in pick)


HOLES: tuple[tuple[int, int], ...] = _draw_holes()
"""Hole centres (grid column, row) of the cloth task; the first 20 train, the next 20 test."""
HOLE_SPLITS: dict[str, tuple[int, ...]] = {
    "train": tuple(range(20)),
    "test": tuple(range(20, N_HOLES)),
}


class ClothMesh:
    """The cloth's triangle mesh with one hole, in its rest layout (x-z plane, centred at 0).

    Attributes:
        hole: Index into :data:`HOLES`.
        points: (V, 3) rest positions, m.
        triangles: (T, 3) vertex indices.
        boundary: Vertex indices on the hole's rim (corners of the removed cells), ring order.
        corners: Vertex indices of the four corners (gripped), counter-clockwise from (-x, -z).
        grid: (V, 2) integer grid coordinates of each vertex.
    """

    def __init__(self, hole: int) -> None:
        n = CLOTH_GRID
        hi, hj = HOLES[hole]
        self.hole = hole
        removed = {(i, j) for j in range(n) for i in range(n)
                   if (i - hi) ** 2 + (j - hj) ** 2 <= HOLE_RADIUS**2}
        keep = [(i, j) for j in range(n) for i in range(n) if (i, j) not in removed]
        index = {ij: k for k, ij in enumerate(keep)}
        cell = CLOTH_SIZE / (n - 1)
        self.grid = np.array(keep)
        self.points = np.stack(
            [(self.grid[:, 0] - (n - 1) / 2) * cell, np.zeros(len(keep)),
             (self.grid[:, 1] - (n - 1) / 2) * cell], 1)
        tris, rim = [], set()
        for j in range(n - 1):
            for i in range(n - 1):
                quad = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)]
                if any(q in removed for q in quad):
                    rim.update(q for q in quad if q not in removed)
                    continue
                a, b, c, d = (index[q] for q in quad)
                tris += [(a, b, c), (a, c, d)]
        self.triangles = np.array(tris)
        ring = np.array(sorted(rim, key=lambda q: math.atan2(q[1] - hj, q[0] - hi)))
        self.boundary = np.array([index[tuple(q)] for q in ring])
        self.corners = np.array([index[(0, 0)], index[(n - 1, 0)], index[(n - 1, n - 1)],
                                 index[(0, n - 1)]])
        self.centre = np.array([(hi - (n - 1) / 2) * cell, 0.0, (hj - (n - 1) / 2) * cell])


def resolve_holes(hole: Any) -> tuple[int, ...]:
    """The hole pool from ``hole=``: ``"train"``, ``"test"``, ``"all"``, an index or indices."""
    if isinstance(hole, str):
        if hole == "all":
            return tuple(range(N_HOLES))
        if hole in HOLE_SPLITS:
            return HOLE_SPLITS[hole]
    else:
        items = [hole] if isinstance(hole, int | np.integer) else hole
        if isinstance(items, Sequence | np.ndarray) and len(items) > 0 and all(
            isinstance(h, int | np.integer) and not isinstance(h, bool) for h in items
        ):
            bad = [int(h) for h in items if not 0 <= int(h) < N_HOLES]
            if bad:
                raise ValueError(f"hole index {bad} out of range: holes are 0..{N_HOLES - 1}")
            if len(set(map(int, items))) != len(items):
                raise ValueError(f"hole list repeats an index: {list(items)}")
            return tuple(int(h) for h in items)
    raise ValueError(
        f"hole must be 'train' (holes 0-19), 'test' (20-39), 'all', an index 0..{N_HOLES - 1} or "
        f"a list of indices; got {hole!r}"
    )


# --- MJCF ---------------------------------------------------------------------------------------
_HEADER = f"""<mujoco model="{{name}}">
  <compiler autolimits="true"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic" gravity="0 0 0"/>
  <visual><global offwidth="1280" offheight="960"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".85 .85 .85" rgb2=".75 .75 .75"
             width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="8 8" reflectance=".05"/>
  </asset>
  <worldbody>
    <light pos="0 0 8" dir="0 0 -1" directional="true"/>
"""


def rope_xml(n_points: int, length: float, hanger: float | None, target_sites: int) -> str:
    """MJCF of a straight rope along x centred at the origin, at height :data:`ROPE_Z`.

    Args:
        n_points: Rope vertices.
        length: Rope length, m.
        hanger: Radius of the hanger post (a mocap cylinder), m; ``None``: no hanger.
        target_sites: Number of non-colliding target marker sites (0: none).
    """
    spacing = length / (n_points - 1)
    body = [_HEADER.format(name="rope"),
            '    <geom name="floor" type="plane" size="0 0 0.05" material="grid" contype="0" '
            'conaffinity="0"/>\n']
    if hanger is not None:
        body.append(
            f'    <body name="hanger" mocap="true" pos="0 0 0"><geom type="cylinder" '
            f'size="{hanger} {ROPE_Z + 0.1}" pos="0 0 {ROPE_Z + 0.1}" rgba=".45 .3 .2 1" '
            f'friction="{FRICTION}"/></body>\n')
    for k in range(target_sites):
        body.append(f'    <site name="target{k}" size="{ROPE_RADIUS * 0.6}" rgba=".2 .8 .2 .5"/>\n')
    body.append(
        f'    <flexcomp name="rope" type="grid" dim="1" count="{n_points} 1 1" '
        f'spacing="{spacing:.9g} 1 1" pos="0 0 {ROPE_Z}" radius="{ROPE_RADIUS}" '
        f'mass="{ROPE_MASS}" rgba=".8 .3 .2 1">\n'
        '      <edge equality="true"/>\n'
        f'      <contact condim="3" friction="{FRICTION}" selfcollide="none"/>\n'
        '    </flexcomp>\n  </worldbody>\n</mujoco>\n')
    return "".join(body)


def cloth_xml(mesh: ClothMesh, peg_radius: float, peg_length: float, plate_radius: float) -> str:
    """MJCF of the cloth (rest layout) and the hanger (a mocap peg on a round back plate)."""
    pts = " ".join(f"{v:.9g}" for v in mesh.points.ravel())
    tri = " ".join(str(int(v)) for v in mesh.triangles.ravel())
    half = peg_length / 2
    return (
        _HEADER.format(name="cloth")
        + '    <geom name="floor" type="plane" size="0 0 0.05" material="grid" contype="0" '
        'conaffinity="0"/>\n'
        f'    <body name="hanger" mocap="true" pos="0 0 4">\n'
        f'      <geom name="peg" type="capsule" fromto="0 {-half} 0 0 {half} 0" '
        f'size="{peg_radius}" rgba=".45 .3 .2 1" friction="{FRICTION}"/>\n'
        f'      <geom name="plate" type="cylinder" size="{plate_radius} 0.01" pos="0 {-half} 0" '
        f'zaxis="0 1 0" rgba=".5 .5 .55 1" friction="{FRICTION}"/>\n'
        '    </body>\n'
        f'    <flexcomp name="cloth" type="direct" dim="2" radius="{CLOTH_RADIUS}" '
        f'mass="{CLOTH_MASS}" rgba=".25 .45 .8 1" point="{pts}" element="{tri}">\n'
        '      <edge equality="true"/>\n'
        f'      <contact condim="3" friction="{FRICTION}" selfcollide="none"/>\n'
        '    </flexcomp>\n  </worldbody>\n</mujoco>\n'
    )


def compile_flex(
    xml: str, flex: str, grips: Sequence[int], kv: float, drag: float
) -> mujoco.MjModel:
    """Compile a one-flex scene and add a velocity servo on each gripped vertex's 3 slides.

    The servos (actuators ``grip{g}_{x,y,z}``, in gripper-major order) act on the slide joints
    MuJoCo creates for vertex body ``{flex}_{v}``; every other vertex gets a velocity damping of
    ``drag`` (1/s) times its mass.
    """
    spec = mujoco.MjSpec.from_string(xml)
    for g, v in enumerate(grips):
        joints = spec.body(f"{flex}_{int(v)}").joints
        for k, axis in enumerate("xyz"):
            joints[k].name = f"grip{g}_{axis}"
            act = spec.add_actuator()
            act.name = f"grip{g}_{axis}"
            act.target = joints[k].name
            act.trntype = mujoco.mjtTrn.mjTRN_JOINT
            act.set_to_velocity(kv=kv)
    model = spec.compile()
    n = int(model.flex_vertnum[0])
    # Every vertex body has exactly three slide joints, in vertex order: qpos = displacements.
    if model.nq != 3 * n or model.nv != 3 * n:
        raise RuntimeError(f"unexpected flex layout: nq={model.nq}, nv={model.nv}, {n} vertices")
    mass = model.body_mass[model.flex_vertbodyid]
    model.dof_damping[:] = drag * np.repeat(mass, 3)
    for v in grips:
        model.dof_damping[3 * int(v) : 3 * int(v) + 3] = 0.0
    return model


# --- env base -----------------------------------------------------------------------------------
class FlexEnv(GraphMujocoEnv):
    """Shared machinery of the rope and cloth envs: gripper commands, vertex state, scene frame.

    Subclasses call :meth:`_bind` after choosing a model, implement ``_fill_obs``,
    ``_get_rew(cmd, stale)`` and ``_metrics``, end ``reset`` with :meth:`_finish_reset`, and use
    :meth:`step` as is.
    """

    planar: bool = True  # the scene is symmetric under rotations about the vertical only
    max_speed: float = 1.0  # m/s of a unit command

    def _bind(self, grips: np.ndarray) -> None:
        """Cache the model's vertex layout (call after switching model and data)."""
        m = self.model
        self._rest = m.body_pos[m.flex_vertbodyid].copy()  # (V, 3), world frame (parent: world)
        self._grips = np.asarray(grips)
        self._n_vert = len(self._rest)

    def _init_actions(self, n_grips: int) -> None:
        used = np.ones((n_grips, 3), dtype=bool)
        if self.planar:
            used[:, 2] = False
        self._obs.views["action_mask"][:] = used.ravel()
        self._used = used
        self._prev_cmd = np.zeros((n_grips, 3))

    def _command(self, action: Any) -> np.ndarray:
        """Validated action as one velocity per gripper, length-limited to 1 (not per axis)."""
        a = self._check_action(action).reshape(-1, 3)
        cmd = np.where(self._used, a, 0.0)  # masked entries (planar z) are ignored
        norm2 = (cmd * cmd).sum(axis=1)
        if norm2.max() > 1.0:
            cmd /= np.maximum(np.sqrt(norm2), 1.0)[:, None]
        return cmd

    def _positions(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions and velocities of every vertex, (V, 3) each, after the last step."""
        d = self.data
        return self._rest + d.qpos.reshape(-1, 3), d.qvel.reshape(-1, 3)

    def _set_positions(self, pos: np.ndarray) -> None:
        self.data.qpos[:] = (pos - self._rest).ravel()

    def _diverged(self) -> bool:
        """MuJoCo's bad-state warnings fired, or a vertex moves impossibly fast."""
        if self._simulate():
            return True
        return bool(np.abs(self.data.qvel).max() > _MAX_SPEED)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Advance one control step (0.02 s); see the class docstring."""
        cmd = self._command(action)
        self.data.ctrl[:] = (cmd * self.max_speed).ravel()
        self._step += 1
        unstable = self._diverged()
        if not unstable:
            self._pos, self._vel = self._positions()
            self._fill_obs()
        # On divergence the last finite state (cached positions and observation) scores the step.
        reward, info = self._get_rew(cmd, stale=unstable)
        if unstable:
            info["is_success"] = False
        self._prev_cmd = cmd
        info["sim_unstable"] = unstable
        truncated = unstable or self._step >= self.episode_steps
        if self.render_mode == "human":
            self.render()
        return self._obs.snapshot(), reward, False, truncated, info

    def _finish_reset(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """After the subclass has placed the scene: derived data, state cache, first obs."""
        mujoco.mj_forward(self.model, self.data)
        self._step = 0
        self._prev_cmd = np.zeros_like(self._prev_cmd)
        self._pos, self._vel = self._positions()
        self._fill_obs()
        info = self._metrics()
        if self.render_mode == "human":
            self.render()
        return self._obs.snapshot(), info

    def _rate(self, cmd: np.ndarray) -> float:
        diff = (cmd - self._prev_cmd)[self._used]
        return float(diff @ diff)

    def _scene_frame(self, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The optional extra scene rotation and translation (reset options), validated."""
        return scene_frame(options, "the rope moves in a fixed horizontal plane" if self.planar
                           else None)


def euler_xyz(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """``Rz(yaw) Ry(pitch) Rx(roll)``."""
    c, s = math.cos(roll), math.sin(roll)
    return rot_z(yaw) @ rot_y(pitch) @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])

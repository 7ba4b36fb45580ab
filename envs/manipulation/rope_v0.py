"""Rope closing and rope shaping with graph observations (after HEPi's rope tasks)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from equigym.envs.manipulation.deformable import (
    FRAME_SKIP,
    ROPE_DRAG,
    ROPE_KV,
    ROPE_TARGETS,
    ROPE_Z,
    FlexEnv,
    compile_flex,
    resample_polyline,
    rope_xml,
)
from equigym.envs.mujoco_base import (
    check_kwargs,
    check_positive_int,
    check_reset_options,
    rot_z,
)
from equigym.graph import ActionGroup, EdgeType, GraphSpec, NodeType

HANGER_RADIUS = 0.1  # m, the closing task's post (the reference's radius is unverified)
_HANGER_AT = np.array([2.0, 3.0])  # m, hanger centre before the U[-0.5, 0.5]^2 shift
_HANGER_SHIFT = 0.5  # m
CLOSE_GAP = 0.2  # m, largest end-to-end gap of a closed rope
SHAPE_TOL = 0.075  # largest RMS shape error of a success, as a fraction of the rope length
_FINAL_CLOSING = 20  # last steps in which the ends-together term counts
_FINAL_SHAPING = 10  # last steps in which the shape term is multiplied by 5

RopeTarget = str | Sequence[str] | Sequence[Sequence[float]]

_DEFAULTS = {
    "closing": {"n_points": 40, "length": 5.0, "max_speed": 5.0},
    "shaping": {"n_points": 80, "length": 10.0, "max_speed": 5.0},
}
_DESCRIPTIONS = {
    "arc": "position along the rope, 0 at gripper 0's end, 1 at gripper 1's end",
    "gripped": "1 at the two gripped end vertices",
    "offset": "closing: position minus the hanger axis point; shaping: position minus its "
              "target point, minus the mean of that over the rope (translation-free), m",
    "lin_vel": "velocity, m/s",
    "one": "constant 1",
}


class RopeEnv(FlexEnv):
    r"""Close a rope around a post, or lay it out in a target shape, with two end grippers.

    ## Description
    After HEPi's rope tasks (Hoang et al., ICLR 2025, arXiv:2502.07005), on MuJoCo 4 flex
    instead of Isaac Sim capsule chains:

    - ``equigym/RopeClosing-v0`` (``task="closing"``): a 40-point, 5 m rope; close it around a
      vertical hanger post (ends together, post inside the loop).
    - ``equigym/RopeShaping-v0`` (``task="shaping"``): an 80-point, 10 m rope; lay it out in a
      target curve (a W by default; ``target=`` takes ``"U"``, ``"S"``, ``"arc"``, a list of
      names, ``"all"`` or your own polyline).

    The rope is a ``flexcomp dim="1"`` with inextensible edges (equality constraints) floating in
    the horizontal plane ``z = 0.1`` m without gravity, as the reference; each end vertex is a
    gripper driven by a velocity servo (see :mod:`~equigym.envs.manipulation.deformable` for the
    physics choices). Friction cones are elliptic.

    ## Observation (``env.unwrapped.graph_spec``)
    | node type | count | scalars | vectors (world frame) |
    |---|---|---|---|
    | ``rope`` | rope vertices | ``arc``, ``gripped`` | ``offset``, ``lin_vel`` |
    | ``actuator`` | 2 (the end grippers) | ``one`` | ``offset``, ``lin_vel`` |

    ``offset``: closing: position minus the hanger's axis point (at the rope's height);
    shaping: position minus the matching target point, minus the mean of that over the rope (the
    reward ignores where the shape is, only its form and orientation count). Velocities are the
    vertices' true velocities.

    | edge type | count | meaning |
    |---|---|---|
    | ``rope-chain-rope`` | ``2 (n - 1)`` | neighbours along the rope, both ways |
    | ``rope-knn-rope`` | ``knn * n`` (``knn > 0`` only) | ``knn`` nearest vertices in space, now |
    | ``rope-task-actuator`` | ``2 n`` | every vertex → every gripper |
    | ``actuator-agent-actuator`` | 2 | gripper ↔ gripper |

    Globals: vector ``up`` (the rope plane's normal, the axis of the task's symmetry), scalar
    ``time_left`` (share of the episode left: the last steps weigh more).

    ## Action Space
    ``Box(-1, 1, (6,))``: a velocity per gripper (x 5 m/s), entries ``3 g .. 3 g + 2``. The
    vertical entries are ignored (``action_mask`` 0): the grippers stay in the rope's plane. Each
    velocity is scaled down to length 1 if longer (a limit by length commutes with rotations).
    NaN/inf or a wrong shape raise ``ValueError`` before anything is simulated.

    ## Rewards (terms in ``info["reward_<term>"]``, summing to the reward; each x ``dt`` 0.02 s)
    Closing:

    - ``ends``: ``-2 |g_0 - g_1|`` (gripper distance), only in the last 20 steps.
    - ``centre``: ``-0.8 |mean(p) - h|`` (rope centroid to hanger, horizontal).
    - ``velocity``: ``-0.01 mean |v_i|``.
    - ``rate``: ``-1e-3 sum (a_t - a_t-1)^2`` over the used action entries.

    Shaping:

    - ``shape``: ``-MSE(D(rope), D(target))``, x 5 in the last 10 steps. ``D`` stacks the turning
      angles, the segment angles to the end-to-end chord, the positions relative to the chord's
      midpoint and their norms (angle differences wrapped to ``(-pi, pi]``); it ignores where the
      rope is, not how it is turned (the target's orientation is part of the task).
    - ``rate``: ``-1e-4 sum (a_t - a_t-1)^2``.

    ``info["is_success"]``: closing: grippers within 0.2 m and the post inside the rope's loop
    (the polygon of the vertices, closed between the ends); shaping: ``shape_error`` (RMS distance
    of the centred vertices to the centred target points) below 7.5 % of the rope length
    (0.75 m for 10 m; a straight start scores about 2.3 m).

    ## Starting State
    Closing: hanger at ``(2, 3) + U[-0.5, 0.5]^2`` m; the straight rope, centred at the origin
    along x, turned about its centre by ``U[-pi/4, pi/4]``, then about the hanger by
    ``U[-pi, pi]``. Shaping: target (centred at the origin) turned by ``U[-pi/2, pi/2]``, the
    straight rope (centred at the origin) by the target's angle plus
    ``+-U[pi/4, pi/2]``. ``reset(options=...)``: ``target`` (shaping: a name from the pool),
    ``scene_rotation`` (about the vertical) and ``scene_translation`` (horizontal).

    ## Episode End
    No termination; truncation after 200 steps, or when the flex diverges (``info["sim_unstable"]``:
    MuJoCo's bad-state warnings or a vertex above 1 km/s; the step returns the last finite
    observation, scored by the last finite state, with ``is_success`` False).

    ## Arguments
    | argument | default | description |
    |---|---|---|
    | ``task`` | per id | ``"closing"`` or ``"shaping"`` |
    | ``n_points`` | 40 / 80 | rope vertices (and rope nodes) |
    | ``length`` | 5 / 10 | rope length, m |
    | ``target`` | ``"W"`` | shaping only: name, list of names, ``"all"``, or polyline (x, y) |
    | ``knn`` | 0 | add ``rope-knn-rope`` edges to this many nearest vertices (0: none) |
    | ``episode_steps`` | 200 | control steps per episode |
    | ``render_mode``, ``width``, ``height``, ``camera_name`` | | rendering |

    ## Version History
    - v0: first release (gymnasium 1.4, MuJoCo 4).
    """

    planar = True

    def __init__(
        self,
        task: str = "closing",
        n_points: int | None = None,
        length: float | None = None,
        target: RopeTarget | None = None,
        knn: int = 0,
        episode_steps: int = 200,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_kwargs(type(self).__name__, kwargs, _ARGUMENTS)
        if task not in _DEFAULTS:
            raise ValueError(f"Unknown rope task {task!r}; choose 'closing' or 'shaping'.")
        self.task = task
        d = _DEFAULTS[task]
        n_points = d["n_points"] if n_points is None else n_points
        if isinstance(n_points, bool) or not isinstance(n_points, int | np.integer) or not (
            4 <= n_points <= 400
        ):
            raise ValueError(f"n_points must be an integer in [4, 400], got {n_points!r}")
        length = d["length"] if length is None else length
        if isinstance(length, bool) or not isinstance(length, int | float) or not (
            0.5 <= float(length) <= 50.0
        ):
            raise ValueError(f"length must be a number of metres in [0.5, 50], got {length!r}")
        if isinstance(knn, bool) or not isinstance(knn, int | np.integer) or not (
            0 <= knn < n_points
        ):
            raise ValueError(f"knn must be an integer in [0, n_points), got {knn!r}")
        self.n_points, self.length, self.knn = int(n_points), float(length), int(knn)
        self.episode_steps = check_positive_int("episode_steps", episode_steps)
        self.max_speed = d["max_speed"]
        if task == "closing" and target is not None:
            raise ValueError("target= applies to RopeShaping only (closing has no target curve)")
        self.targets: dict[str, np.ndarray] = (
            _resolve_targets("W" if target is None else target, self.n_points, self.length)
            if task == "shaping" else {}
        )
        model = compile_flex(
            rope_xml(self.n_points, self.length, HANGER_RADIUS if task == "closing" else None,
                     self.n_points if task == "shaping" else 0),
            "rope", (0, self.n_points - 1), ROPE_KV, ROPE_DRAG,
        )
        span = self.length / 2 + (4.0 if task == "closing" else 1.0)
        super().__init__(
            model, FRAME_SKIP, make_rope_spec(self.n_points, self.knn),
            render_mode=render_mode, width=width, height=height, camera_name=camera_name,
            default_camera_config={"distance": 2.6 * span, "elevation": -70.0, "azimuth": 90.0,
                                   "lookat": np.array([1.0 if task == "closing" else 0.0,
                                                       1.5 if task == "closing" else 0.0, 0.0])},
        )
        self._bind(np.array([0, self.n_points - 1]))
        self._init_actions(2)
        n, v = self.n_points, self._obs.views
        v["rope/x"][:, 0] = np.linspace(0.0, 1.0, n)
        v["rope/x"][[0, -1], 1] = 1.0
        v["rope/mask"][:] = 1.0
        v["actuator/x"][:] = 1.0
        v["actuator/mask"][:] = 1.0
        v["rope-chain-rope/index"][:] = np.concatenate(
            [np.stack([np.arange(n - 1), np.arange(1, n)]),
             np.stack([np.arange(1, n), np.arange(n - 1)])], axis=1)
        v["rope-chain-rope/mask"][:] = 1.0
        v["rope-task-actuator/index"][:] = np.stack([np.tile(np.arange(n), 2),
                                                     np.repeat(np.arange(2), n)])
        v["rope-task-actuator/mask"][:] = 1.0
        v["actuator-agent-actuator/index"][:] = ((0, 1), (1, 0))
        v["actuator-agent-actuator/mask"][:] = 1.0
        if self.knn:
            v["rope-knn-rope/index"][1] = np.repeat(np.arange(n), self.knn)
            v["rope-knn-rope/mask"][:] = 1.0
        v["global/vec"][0] = (0.0, 0.0, 1.0)
        self._hanger = np.zeros(3)
        self._target = np.zeros((n, 3))
        self._target_name = next(iter(self.targets), "")
        self._target_desc = np.zeros(0)
        self._step = 0

    # --- observation ------------------------------------------------------------------------
    def _fill_obs(self) -> None:
        v, pos, vel = self._obs.views, self._pos, self._vel
        v["rope/pos"][:] = pos
        if self.task == "closing":
            off = pos - self._hanger
        else:
            off = pos - self._target
            off -= off.mean(axis=0)
            self._residual = off  # also the shape error's
        v["rope/vec"][:, 0] = off
        v["rope/vec"][:, 1] = vel
        v["actuator/pos"][:] = pos[self._grips]
        v["actuator/vec"][:, 0] = off[self._grips]
        v["actuator/vec"][:, 1] = vel[self._grips]
        if self.knn:
            v["rope-knn-rope/index"][0] = knn_sources(pos, self.knn)
        v["global/x"][0] = (self.episode_steps - self._step) / self.episode_steps

    # --- rewards ----------------------------------------------------------------------------
    def _reward_ends(self) -> float:
        if self._step <= self.episode_steps - _FINAL_CLOSING:
            return 0.0
        return -2.0 * self._ends_gap() * self.dt

    def _reward_centre(self) -> float:
        gap = self._pos[:, :2].mean(axis=0) - self._hanger[:2]
        return -0.8 * math.hypot(*gap) * self.dt

    def _reward_velocity(self) -> float:
        return -0.01 * float(np.linalg.norm(self._vel, axis=1).mean()) * self.dt

    def _reward_rate(self, cmd: np.ndarray) -> float:
        w = 1e-3 if self.task == "closing" else 1e-4
        return -w * self._rate(cmd) * self.dt

    def _reward_shape(self) -> float:
        final = self._step > self.episode_steps - _FINAL_SHAPING
        mse = _descriptor_mse(descriptor(self._pos[:, :2]), self._target_desc, self.n_points)
        return -(5.0 if final else 1.0) * mse * self.dt

    def _ends_gap(self) -> float:
        g = self._pos[self._grips, :2]
        return math.hypot(*(g[0] - g[1]))

    def _get_rew(self, cmd: np.ndarray, stale: bool = False) -> tuple[float, dict[str, Any]]:
        """Reward terms from the state after the step (the last finite one if ``stale``)."""
        if self.task == "closing":
            terms = {"reward_ends": self._reward_ends(), "reward_centre": self._reward_centre(),
                     "reward_velocity": 0.0 if stale else self._reward_velocity(),
                     "reward_rate": self._reward_rate(cmd)}
        else:
            terms = {"reward_shape": self._reward_shape(), "reward_rate": self._reward_rate(cmd)}
        return sum(terms.values()), {**terms, **self._metrics()}

    def _metrics(self) -> dict[str, Any]:
        if self.task == "closing":
            gap = self._ends_gap()
            inside = _inside(self._pos[:, :2], self._hanger[:2])
            return {"ends_distance": gap, "encloses_hanger": inside,
                    "is_success": bool(inside and gap <= CLOSE_GAP)}
        err = self.shape_error()
        return {"shape_error": err, "target": self._target_name,
                "is_success": bool(err <= SHAPE_TOL * self.length)}

    def shape_error(self) -> float:
        """RMS distance between the centred rope and the centred target, m (shaping)."""
        off = self._residual
        return math.sqrt(float((off * off).sum()) / self.n_points)

    # --- episode ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Sample a scene (see the class docstring's Starting State).

        Args:
            seed: Seed for the env's random generator.
            options: Optional ``{"target": name, "scene_rotation": R, "scene_translation": t}``.
        """
        super().reset(seed=seed)
        valid = {"scene_rotation", "scene_translation"} | (
            {"target"} if self.task == "shaping" else set())
        options = check_reset_options(options, valid)
        rot_s, trans_s = self._scene_frame(options)
        rng = self.np_random
        self._reset_data()
        m, d, n = self.model, self.data, self.n_points
        straight = np.stack([np.linspace(-self.length / 2, self.length / 2, n),
                             np.zeros(n), np.full(n, ROPE_Z)], 1)
        if self.task == "closing":
            hanger = np.r_[_HANGER_AT + rng.uniform(-_HANGER_SHIFT, _HANGER_SHIFT, 2), ROPE_Z]
            rope = straight @ rot_z(rng.uniform(-np.pi / 4, np.pi / 4)).T
            turn = rot_z(rng.uniform(-np.pi, np.pi))
            rope = (rope - hanger) @ turn.T + hanger
            self._hanger = rot_s @ hanger + trans_s
            d.mocap_pos[0] = self._hanger - (0.0, 0.0, ROPE_Z)
        else:
            names = list(self.targets)
            name = names[int(rng.integers(len(names)))]  # always drawn: options keep the stream
            if "target" in options:
                name = options["target"]
                if name not in self.targets:
                    raise ValueError(f"reset option target={name!r} is not in this env's pool "
                                     f"{names}; make the env with target= covering it.")
            yaw_t = rng.uniform(-np.pi / 2, np.pi / 2)
            yaw_r = yaw_t + rng.choice((-1.0, 1.0)) * rng.uniform(np.pi / 4, np.pi / 2)
            target = np.c_[self.targets[name], np.full(n, ROPE_Z)] @ rot_z(yaw_t).T
            rope = straight @ rot_z(yaw_r).T
            self._target = target @ rot_s.T + trans_s
            self._target_name = name
            self._target_desc = descriptor(self._target[:, :2])
            m.site_pos[:n] = self._target
        self._set_positions(rope @ rot_s.T + trans_s)
        return self._finish_reset()


_ARGUMENTS = ["task", "n_points", "length", "target", "knn", "episode_steps", "render_mode",
              "width", "height", "camera_name"]


def _resolve_targets(target: Any, n: int, length: float) -> dict[str, np.ndarray]:
    """Name -> (n, 2) target points centred at their mean, arc length ``length``."""
    if isinstance(target, str):
        names = list(ROPE_TARGETS) if target == "all" else [target]
    elif isinstance(target, Sequence | np.ndarray) and len(target) > 0 and all(
        isinstance(t, str) for t in target
    ):
        names = list(target)
        if len(set(names)) != len(names):
            raise ValueError(f"target list repeats a name: {names}")
    else:
        pts = resample_polyline(target, n, length)
        return {"custom": pts - pts.mean(axis=0)}
    out = {}
    for name in names:
        if name not in ROPE_TARGETS:
            raise ValueError(f"Unknown rope target {name!r}; built-ins: {sorted(ROPE_TARGETS)}, "
                             "'all', or a polyline [(x, y), ...] in metres.")
        pts = resample_polyline(ROPE_TARGETS[name], n, length)
        out[name] = pts - pts.mean(axis=0)
    return out


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def descriptor(xy: np.ndarray) -> np.ndarray:
    """Shape descriptor ``D`` of a 2-D polyline (n, 2): HEPi's rope-shaping features.

    ``[turning angles (n-2), segment angles to the chord (n-1), positions relative to the chord
    midpoint (2n), their norms (n)]``; angles in rad, positions in m. Invariant to translations;
    turns with the polyline (positions), so the target's orientation counts.
    """
    seg = np.diff(xy, axis=0)
    ang = np.arctan2(seg[:, 1], seg[:, 0])
    chord = xy[-1] - xy[0]
    rel = xy - 0.5 * (xy[0] + xy[-1])
    return np.concatenate([
        _wrap(np.diff(ang)), _wrap(ang - math.atan2(chord[1], chord[0])), rel.ravel(),
        np.sqrt((rel * rel).sum(axis=1)),
    ])


def _descriptor_mse(a: np.ndarray, b: np.ndarray, n: int) -> float:
    diff = a - b
    k = 2 * n - 3  # the angle entries come first: compare them on the circle
    diff[:k] = _wrap(diff[:k])
    return float(diff @ diff) / len(diff)


def _inside(poly: np.ndarray, point: np.ndarray) -> bool:
    """Even-odd test: is ``point`` inside the polygon ``poly`` (closed between its ends)?"""
    x, y = poly[:, 0] - point[0], poly[:, 1] - point[1]
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    crosses = (y > 0) != (y2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x + (0.0 - y) * (x2 - x) / (y2 - y)
    return bool(np.count_nonzero(crosses & (xint > 0)) % 2)


def knn_sources(pos: np.ndarray, k: int) -> np.ndarray:
    """Source row of the ``rope-knn-rope`` edges: each vertex's ``k`` nearest (horizontally)."""
    xy = pos[:, :2]
    dist = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    return np.argpartition(dist, k - 1, axis=1)[:, :k].ravel()


def make_rope_spec(n: int, knn: int = 0) -> GraphSpec:
    """The graph spec of a rope task with ``n`` vertices (and ``knn`` spatial neighbours)."""
    edges = [EdgeType("rope", "chain", "rope", 2 * (n - 1))]
    if knn:
        edges.append(EdgeType("rope", "knn", "rope", knn * n))
    edges += [EdgeType("rope", "task", "actuator", 2 * n),
              EdgeType("actuator", "agent", "actuator", 2)]
    return GraphSpec(
        node_types=(
            NodeType("rope", n, ("arc", "gripped"), ("offset", "lin_vel"), ("vector", "vector"),
                     _DESCRIPTIONS),
            NodeType("actuator", 2, ("one",), ("offset", "lin_vel"), ("vector", "vector"),
                     _DESCRIPTIONS),
        ),
        edge_types=tuple(edges),
        global_vector_names=("up",),
        global_vector_kinds=("vector",),
        global_scalar_names=("time_left",),
        actions=(ActionGroup("actuator", 3, "vector", ("vx", "vy", "vz")),),
        symmetry="rotations about the vertical and horizontal translations (the rope moves in a "
                 "horizontal plane without gravity)",
    )

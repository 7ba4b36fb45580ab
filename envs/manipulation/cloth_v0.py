"""Cloth hanging with graph observations (after HEPi's Cloth-Hanging task)."""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np

from equigym.envs.manipulation.deformable import (
    CLOTH_DRAG,
    CLOTH_GRID,
    CLOTH_KV,
    FRAME_SKIP,
    HOLES,
    ClothMesh,
    FlexEnv,
    cloth_xml,
    compile_flex,
    euler_xyz,
    resolve_holes,
)
from equigym.envs.mujoco_base import (
    check_kwargs,
    check_positive_int,
    check_reset_options,
    mat_to_quat,
    rot_y,
)
from equigym.graph import ActionGroup, EdgeType, GraphSpec, NodeType

PEG_RADIUS = 0.03  # m, the hanger peg
PEG_LENGTH = 0.6  # m
PLATE_RADIUS = 0.25  # m, back plate at the peg's base
HANG_TOL = 0.05  # m, largest distance of the hole centre from the peg's axis in a success
_CLOTH_CENTRE = np.array([0.0, 0.0, 4.5])  # m
_HANGER_AT = np.array([0.0, -1.5, 4.5])  # m, peg centre before the shift
_HANGER_SHIFT = 0.5  # m, U[-0.5, 0.5] along x and z
_FINAL = 2  # last steps with the x5 hanging term
KNN = 4  # cloth nodes' neighbours, in the rest layout
_MAX_SPEED = 2.0  # m/s of a unit command

_DESCRIPTIONS = {
    "boundary": "1 on the hole's rim, 0 on the sheet subsample",
    "offset": "position minus the peg's centre (the hole's goal), m",
    "lin_vel": "velocity, m/s",
    "one": "constant 1",
}


class ClothHangingEnv(FlexEnv):
    r"""Hang a cloth by its hole on a peg, with four corner grippers.

    ## Description
    After HEPi's Cloth-Hanging (Hoang et al., ICLR 2025, arXiv:2502.07005), on MuJoCo 4 flex
    instead of Isaac Sim PBD. A 1 m square cloth of 16 x 16 vertices with one hole (the vertices
    within 1.1 cells of a grid vertex removed; a 16-vertex rim, about 9-13 cm across the
    opening) floats without gravity; four grippers hold its corners. A peg (radius 3 cm, length
    0.6 m) sticks out of a round back plate; thread the hole onto the peg and slide it to the
    peg's middle. The cloth is a ``flexcomp dim="2"`` with inextensible edges; grippers are
    velocity servos on the corner vertices (see :mod:`~equigym.envs.manipulation.deformable`).

    The 40 hole positions come from a fixed seed (``HOLES``): 0-19 train, 20-39 held out
    (``hole="train" | "test" | "all" | index | [indices]``). Each hole is its own mesh: one model
    per hole, compiled on first use and cached.

    ## Observation (``env.unwrapped.graph_spec``)
    | node type | count | scalars | vectors (world frame) |
    |---|---|---|---|
    | ``cloth`` | 16 rim vertices (+ sheet subsample) | ``boundary`` | ``offset``, ``lin_vel`` |
    | ``actuator`` | 4 (corner grippers) | ``one`` | ``offset``, ``lin_vel`` |

    ``offset`` is the position minus the peg's centre; velocities are the vertices' true
    velocities (HEPi fed zeros for the rim). ``sheet_stride=k`` adds every k-th vertex of the
    grid in both directions (not on the rim) as ``cloth`` nodes with ``boundary`` 0.

    | edge type | count | meaning |
    |---|---|---|
    | ``cloth-mesh-cloth`` | ``4 n`` | 4 nearest cloth nodes in the rest layout → node |
    | ``cloth-task-actuator`` | ``4 n`` | every cloth node → every gripper |
    | ``actuator-agent-actuator`` | 12 | gripper ↔ gripper |

    Globals: vector ``hanger_axis`` (unit, base to tip of the peg), scalar ``time_left``. No
    gravity, so the task is symmetric under every rotation and translation; the peg's axis
    replaces the reference's world +y in the reward, which broke that symmetry.

    ## Action Space
    ``Box(-1, 1, (12,))``: a velocity per gripper (x 2 m/s), entries ``3 g .. 3 g + 2``, each
    scaled down to length 1 if longer. NaN/inf or a wrong shape raise ``ValueError``.

    ## Rewards (terms in ``info["reward_<term>"]``, summing to the reward; each x ``dt`` 0.02 s)
    ``c`` = hole centre (mean of the rim vertices), ``h`` = peg centre, ``u`` = peg axis.

    - ``hang``: ``-0.8 (|c - h| + 0.1 |cos(c - h, u) - 1|)``, x 5 in the last 2 steps.
    - ``velocity``: ``-0.2 mean |v|`` over every cloth vertex.
    - ``strain``: ``-1.0 mean | |e| - |e_0| | / |e_0|`` over every cloth edge.
    - ``rate``: ``-2e-3 sum (a_t - a_t-1)^2``.

    ``info["is_success"]``: the hole is on the peg: ``c`` within 5 cm of the peg's axis and
    between its base and tip (``info["axis_distance"]``, ``info["hole_distance"] = |c - h|``).

    ## Starting State
    As HEPi: the cloth hangs in the x-z plane centred at ``(0, 0, 4.5)``, turned in its plane by
    ``U[-pi, pi]``; the peg's centre at ``(0, -1.5, 4.5) + (U[-0.5, 0.5], 0, U[-0.5, 0.5])``
    points along +y (towards the cloth); then cloth and peg turn about the peg's centre by
    ``Rz(yaw) Ry(pitch) Rx(roll)``, roll ``U[-pi/4, pi/2]``, pitch ``U[-pi/2, pi/2]``, yaw
    ``U[-pi, pi]``. ``reset(options=...)``: ``hole`` (an index from the pool),
    ``scene_rotation`` (any rotation) and ``scene_translation``.

    ## Episode End
    No termination; truncation after 100 steps, or when the flex diverges
    (``info["sim_unstable"]``, last finite observation, ``is_success`` False).

    ## Arguments
    | argument | default | description |
    |---|---|---|
    | ``hole`` | ``"train"`` | ``"train"``, ``"test"``, ``"all"``, an index or a list |
    | ``sheet_stride`` | 0 | add every k-th grid vertex as a cloth node (0: rim only) |
    | ``episode_steps`` | 100 | control steps per episode |
    | ``render_mode``, ``width``, ``height``, ``camera_name`` | | rendering |

    ## Version History
    - v0: first release (gymnasium 1.4, MuJoCo 4).
    """

    planar = False
    max_speed = _MAX_SPEED

    def __init__(
        self,
        hole: Any = "train",
        sheet_stride: int = 0,
        episode_steps: int = 100,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_kwargs(type(self).__name__, kwargs, _ARGUMENTS)
        self.holes = resolve_holes(hole)
        if isinstance(sheet_stride, bool) or not isinstance(sheet_stride, int | np.integer) or \
                not 0 <= sheet_stride < CLOTH_GRID:
            raise ValueError(f"sheet_stride must be an integer in [0, {CLOTH_GRID}), got "
                             f"{sheet_stride!r}")
        self.sheet_stride = int(sheet_stride)
        self.episode_steps = check_positive_int("episode_steps", episode_steps)
        self._meshes = {h: ClothMesh(h) for h in self.holes}
        self._nodes = {h: self._node_ids(self._meshes[h]) for h in self.holes}
        n_nodes = max(len(ids) for ids in self._nodes.values())
        self._models: dict[int, mujoco.MjModel] = {}
        self._datas: dict[int, mujoco.MjData] = {}
        first = self.holes[0]
        super().__init__(
            self._model_for(first), FRAME_SKIP, make_cloth_spec(n_nodes),
            render_mode=render_mode, width=width, height=height, camera_name=camera_name,
            default_camera_config={"distance": 4.5, "elevation": -20.0, "azimuth": 45.0,
                                   "lookat": np.array([0.0, -0.75, 4.5])},
        )
        self._datas[first] = self.data
        self._init_actions(4)
        v = self._obs.views
        v["actuator/x"][:] = 1.0
        v["actuator/mask"][:] = 1.0
        src, dst = np.nonzero(~np.eye(4, dtype=bool))
        v["actuator-agent-actuator/index"][:] = np.stack([src, dst])
        v["actuator-agent-actuator/mask"][:] = 1.0
        self.hole = -1
        self._set_hole(first)
        self._step = 0

    def _node_ids(self, mesh: ClothMesh) -> np.ndarray:
        """Vertex ids of the cloth nodes: the rim, then the sheet subsample."""
        ids = list(mesh.boundary)
        if self.sheet_stride:
            k, rim = self.sheet_stride, set(ids)
            ids += [v for v, (i, j) in enumerate(mesh.grid)
                    if i % k == 0 and j % k == 0 and v not in rim]
        return np.array(ids)

    def _model_for(self, hole: int) -> mujoco.MjModel:
        if hole not in self._models:
            mesh = self._meshes[hole]
            self._models[hole] = compile_flex(
                cloth_xml(mesh, PEG_RADIUS, PEG_LENGTH, PLATE_RADIUS), "cloth", mesh.corners,
                CLOTH_KV, CLOTH_DRAG)
        return self._models[hole]

    def _set_hole(self, hole: int) -> None:
        """Switch model, data and the hole-dependent (constant) parts of the observation."""
        if hole != self.hole:
            self.close()  # the renderer belongs to the old model
        self.hole = hole
        self.model = self._model_for(hole)
        if hole not in self._datas:
            self._datas[hole] = mujoco.MjData(self.model)
        self.data = self._datas[hole]
        mesh = self._meshes[hole]
        self._bind(mesh.corners)
        self._rim = mesh.boundary
        self._node = self._nodes[hole]
        n, v = len(self._node), self._obs.views
        v["cloth/x"][:] = 0.0
        v["cloth/x"][: len(self._rim), 0] = 1.0
        v["cloth/mask"][:] = 0.0
        v["cloth/mask"][:n] = 1.0
        v["cloth/pos"][:] = 0.0
        v["cloth/vec"][:] = 0.0
        rest = mesh.points[self._node]
        dist = np.linalg.norm(rest[:, None] - rest[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        k = min(KNN, n - 1)
        nbr = np.argsort(dist, axis=1, kind="stable")[:, :k]
        for key, src, dst in (
            ("cloth-mesh-cloth", nbr.ravel(), np.repeat(np.arange(n), k)),
            ("cloth-task-actuator", np.tile(np.arange(n), 4), np.repeat(np.arange(4), n)),
        ):
            idx, mask = v[f"{key}/index"], v[f"{key}/mask"]
            idx[:] = 0.0
            mask[:] = 0.0
            idx[0, : len(src)], idx[1, : len(src)] = src, dst
            mask[: len(src)] = 1.0
        edges = self.model.flex_edge
        self._edges = (edges[:, 0].copy(), edges[:, 1].copy())
        rest_all = mesh.points
        self._rest_len = np.linalg.norm(rest_all[self._edges[0]] - rest_all[self._edges[1]],
                                        axis=1)

    # --- observation ------------------------------------------------------------------------
    def _fill_obs(self) -> None:
        v, pos, vel, node = self._obs.views, self._pos, self._vel, self._node
        n = len(node)
        v["cloth/pos"][:n] = pos[node]
        v["cloth/vec"][:n, 0] = pos[node] - self._peg
        v["cloth/vec"][:n, 1] = vel[node]
        grips = self._grips
        v["actuator/pos"][:] = pos[grips]
        v["actuator/vec"][:, 0] = pos[grips] - self._peg
        v["actuator/vec"][:, 1] = vel[grips]
        v["global/x"][0] = (self.episode_steps - self._step) / self.episode_steps

    # --- rewards ----------------------------------------------------------------------------
    def _hole_centre(self) -> np.ndarray:
        return self._pos[self._rim].mean(axis=0)

    def _reward_hang(self, gap: np.ndarray) -> float:
        dist = math.sqrt(float(gap @ gap))
        cos = float(gap @ self._axis) / dist if dist > 1e-12 else 1.0
        f = 5.0 if self._step > self.episode_steps - _FINAL else 1.0
        return -0.8 * f * (dist + 0.1 * abs(cos - 1.0)) * self.dt

    def _reward_velocity(self) -> float:
        return -0.2 * float(np.sqrt((self._vel * self._vel).sum(axis=1)).mean()) * self.dt

    def _reward_strain(self) -> float:
        return -1.0 * self.strain() * self.dt

    def _reward_rate(self, cmd: np.ndarray) -> float:
        return -2e-3 * self._rate(cmd) * self.dt

    def strain(self) -> float:
        """Mean relative edge-length change of the cloth."""
        e = self._pos[self._edges[0]] - self._pos[self._edges[1]]
        length = np.sqrt((e * e).sum(axis=1))
        return float((np.abs(length - self._rest_len) / self._rest_len).mean())

    def _get_rew(self, cmd: np.ndarray, stale: bool = False) -> tuple[float, dict[str, Any]]:
        """Reward terms from the state after the step (the last finite one if ``stale``)."""
        gap = self._hole_centre() - self._peg  # hole centre relative to the peg's centre
        terms = {"reward_hang": self._reward_hang(gap),
                 "reward_velocity": 0.0 if stale else self._reward_velocity(),
                 "reward_strain": self._reward_strain(), "reward_rate": self._reward_rate(cmd)}
        return sum(terms.values()), {**terms, **self._metrics(gap)}

    def _metrics(self, gap: np.ndarray | None = None) -> dict[str, Any]:
        if gap is None:
            gap = self._hole_centre() - self._peg
        along = float(gap @ self._axis)
        radial = math.sqrt(max(float(gap @ gap) - along * along, 0.0))
        on_peg = abs(along) <= PEG_LENGTH / 2 and radial <= HANG_TOL
        return {"hole_distance": math.sqrt(float(gap @ gap)), "axis_distance": radial,
                "hole": self.hole, "is_success": bool(on_peg)}

    # --- episode ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Sample a hole from the pool and a scene (see the class docstring's Starting State).

        Args:
            seed: Seed for the env's random generator.
            options: Optional ``{"hole": index, "scene_rotation": R, "scene_translation": t}``.
        """
        super().reset(seed=seed)
        options = check_reset_options(options, {"hole", "scene_rotation", "scene_translation"})
        rng = self.np_random
        hole = self.holes[int(rng.integers(len(self.holes)))]  # always drawn: keeps the stream
        if "hole" in options:
            hole = options["hole"]
            if isinstance(hole, bool) or hole not in self.holes:
                raise ValueError(f"reset option hole={hole!r} is not in this env's pool "
                                 f"{list(self.holes)}; make the env with hole= covering it.")
            hole = int(hole)
        rot_s, trans_s = self._scene_frame(options)
        self._set_hole(hole)
        self._reset_data()
        spin = rot_y(rng.uniform(-np.pi, np.pi))  # in the cloth's plane (x-z)
        peg = _HANGER_AT + np.array([rng.uniform(-_HANGER_SHIFT, _HANGER_SHIFT), 0.0,
                                     rng.uniform(-_HANGER_SHIFT, _HANGER_SHIFT)])
        tilt = euler_xyz(rng.uniform(-np.pi / 4, np.pi / 2), rng.uniform(-np.pi / 2, np.pi / 2),
                         rng.uniform(-np.pi, np.pi))
        rot = rot_s @ tilt
        cloth = self._meshes[hole].points @ spin.T + _CLOTH_CENTRE
        cloth = (cloth - peg) @ rot.T + rot_s @ peg + trans_s
        self._peg = rot_s @ peg + trans_s
        self._axis = rot[:, 1].copy()
        self._obs.views["global/vec"][0] = self._axis
        self.data.mocap_pos[0] = self._peg
        self.data.mocap_quat[0] = mat_to_quat(rot)
        self._set_positions(cloth)
        return self._finish_reset()


_ARGUMENTS = ["hole", "sheet_stride", "episode_steps", "render_mode", "width", "height",
              "camera_name"]


def make_cloth_spec(n_nodes: int) -> GraphSpec:
    """The graph spec of the cloth task with ``n_nodes`` (padded) cloth nodes."""
    return GraphSpec(
        node_types=(
            NodeType("cloth", n_nodes, ("boundary",), ("offset", "lin_vel"),
                     ("vector", "vector"), _DESCRIPTIONS),
            NodeType("actuator", 4, ("one",), ("offset", "lin_vel"), ("vector", "vector"),
                     _DESCRIPTIONS),
        ),
        edge_types=(
            EdgeType("cloth", "mesh", "cloth", KNN * n_nodes),
            EdgeType("cloth", "task", "actuator", 4 * n_nodes),
            EdgeType("actuator", "agent", "actuator", 12),
        ),
        global_vector_names=("hanger_axis",),
        global_vector_kinds=("vector",),
        global_scalar_names=("time_left",),
        actions=(ActionGroup("actuator", 3, "vector", ("vx", "vy", "vz")),),
        symmetry="every rotation and translation (no gravity; the peg's axis is an input vector)",
    )


__all__ = ["HOLES", "ClothHangingEnv", "make_cloth_spec"]

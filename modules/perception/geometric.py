"""Level-1 perception: depth camera → world point cloud → geometric fit of the tracked nodes.

One fitter per object kind, each driven by what a robot knows without vision: its own grippers'
positions (proprioception, the ``actuator`` nodes) and the object's model (the rigid shape, the
rope's length and vertex count, the cloth's rest mesh with its hole).

- :class:`RigidFitter` (Sliding, Pushing, Insertion, two-agent insertion): two 80 x 80 depth
  views by ray casting (``mj_multiRay``, no OpenGL) from fixed oblique world directions, aimed at
  the last estimate (at a reset: at the grippers); the object's pose by point-to-point ICP
  against points sampled on its mesh surface, tracked from the last pose, searched again when the
  fit degrades (12 turns about the cloud's normal, both signs of it for the free-floating
  two-agent object; ties broken by where the suction grippers hold the object, else by which way
  is up; the symmetric copy nearest the last pose is kept). Node positions are the shape's
  outline vertices under that pose.
- :class:`RopeFitter`: one top-down OpenGL depth view of the flex. At a reset the points are
  ordered by geodesic distance from gripper 0 over an 8-nearest-neighbour graph; afterwards by
  their projection on the last estimate (which keeps touching strands apart). Points are
  averaged in equal arc bins and resampled to the rope's vertex count, ends at the grippers.
  A rope crumpled into overlapping strands cannot be ordered from one depth view: the fit
  degrades there (measured in the README).
- :class:`ClothFitter`: one OpenGL depth view along the normal of the corner grippers' plane;
  the cloth's rest layout is mapped onto the corners (least-squares affine map), and the hole is
  found as the largest empty circle in the cloth points near the predicted hole (projected onto
  their local plane); rim nodes are the mapped rest rim moved to that centre.

Every fitter returns node positions in the layout of the observation's node type (padding zero).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from equigym.envs.manipulation.deformable import ROPE_RADIUS
from equigym.envs.manipulation.scripted import kabsch, rotation_angle
from equigym.envs.mujoco_base import rot_z
from equigym.modules.perception.camera import Camera, FlexDepthRenderer, look_at, ray_depth

RIGID_VIEWS = ((0.8, 0.3, -0.7), (-0.5, -0.8, -0.7))  # viewing directions (world frame)
RIGID_DISTANCE = 0.6  # m, eye to the tracked centroid
RIGID_RESOLUTION = 80  # px (square images)
RIGID_FOVY = 45.0  # degrees
MODEL_POINTS = 4000  # points sampled on the rigid object's surface
ICP_ITERS = 12  # tracking iterations per frame
ICP_REINIT = 0.004  # m, mean residual above which the pose is searched again
SEARCH_TIE = 0.0003  # m, residuals this close to the best fit count as equally good
ROPE_RESOLUTION = 256  # px: a 10 m rope at 4-5 cm per pixel (the rope is 5 cm thick)
ROPE_MARGIN = 0.75  # m, view margin around the rope's last extent
CLOTH_RESOLUTION = 128  # px
CLOTH_DISTANCE = 2.2  # m
HOLE_SEARCH = 0.16  # m, half-width of the hole-centre search window
HOLE_STEP = 0.008  # m, its grid step
HOLE_ENCLOSED = 0.25  # m, a hole centre has cloth within this in every direction
HOLE_REGION = 0.4  # m, cloth points within this of the predicted hole fit its plane


def _frame_from_normal(normal: np.ndarray, yaw: float) -> np.ndarray:
    """A rotation whose z axis is ``normal``, turned by ``yaw`` about it."""
    z = normal / np.linalg.norm(normal)
    a = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(a, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = math.cos(yaw), math.sin(yaw)
    return np.stack([c * x + s * y, -s * x + c * y, z], axis=1)


def surface_points(model: mujoco.MjModel, data: mujoco.MjData, body: int, n: int,
                   seed: int = 0) -> np.ndarray:
    """``n`` points sampled uniformly on the mesh geoms of ``body``, in the body frame."""
    rng = np.random.default_rng(seed)
    tris = []
    rot_b, pos_b = data.xmat[body].reshape(3, 3), data.xpos[body]
    for g in np.flatnonzero(model.geom_bodyid == body):
        mesh = model.geom_dataid[g]
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH or mesh < 0 or model.geom_group[g]:
            continue
        va, vn = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
        fa, fn = model.mesh_faceadr[mesh], model.mesh_facenum[mesh]
        verts = model.mesh_vert[va : va + vn]
        world = verts @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g]
        local = (world - pos_b) @ rot_b
        tris.append(local[model.mesh_face[fa : fa + fn]])
    if not tris:
        raise ValueError("the body has no mesh geoms to sample")
    t = np.concatenate(tris)  # (F, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
    pick = rng.choice(len(t), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    a, b, c = t[pick, 0], t[pick, 1], t[pick, 2]
    return a + r1[:, None] * (b - a) + r2[:, None] * (c - a)


def icp(points: np.ndarray, tree: cKDTree, model: np.ndarray, rot: np.ndarray, pos: np.ndarray,
        iters: int, reject: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Point-to-point ICP of observed world ``points`` against ``model`` (body-frame points).

    Each iteration matches every observed point to its nearest model point under the current
    pose and solves the pose in closed form (Kabsch). Partial views are fine: only observed
    points are matched.

    Returns:
        ``(rotation, position, mean residual in m)``.
    """
    for it in range(iters):
        local = (points - pos) @ rot
        dist, idx = tree.query(local)
        keep = dist < reject if reject is not None and it > 2 else np.ones(len(dist), bool)
        if keep.sum() < 3:
            keep[:] = True
        m, p = model[idx[keep]], points[keep]
        rot = kabsch(m, p)
        pos = p.mean(axis=0) - rot @ m.mean(axis=0)
    dist, _ = tree.query((points - pos) @ rot)
    return rot, pos, float(dist.mean())


class RigidFitter:
    """ICP tracking of a rigid object seen by two ray-cast depth views (see the module doc)."""

    kind = "rigid"

    def __init__(self, env: gym.Env) -> None:
        self.env = env.unwrapped
        self.rot, self.pos = np.eye(3), np.zeros(3)

    def _bind_shape(self) -> None:
        u = self.env
        m, d = u.model, u.data
        body = m.body("object").id
        self._body = body
        # The object's mesh pieces only: the suction cup on top is the robot's.
        self._geoms = np.flatnonzero((m.geom_bodyid == body) & (m.geom_group == 0)
                                     & (m.geom_type == mujoco.mjtGeom.mjGEOM_MESH))
        self.model_points = surface_points(m, d, body, MODEL_POINTS)
        self.tree = cKDTree(self.model_points)
        self.local = u.shape.vertices_3d()
        # The env's symmetries: turns about the object's axis (its offsets use the same set).
        self.symmetries = np.stack([rot_z(2 * math.pi * k / u.shape.symmetry)
                                    for k in range(u.shape.symmetry)])
        # Suction grippers hold fixed points of the object: proprioception tells which way up
        # and round a mirror-symmetric outline lies. The planar tasks keep it upright.
        sites = [m.site(f"grip{g}").id for g in range(u.task.actuators)]
        self._grips = np.array([m.site_pos[s] for s in sites if m.site_bodyid[s] == body])
        self._planar = u.task.name != "two_agents"

    def cloud(self, centre: np.ndarray) -> np.ndarray:
        """World points of the object seen from the two views aimed at ``centre``."""
        u = self.env
        out = []
        for direction in RIGID_VIEWS:
            eye, mat = look_at(centre, np.asarray(direction), RIGID_DISTANCE)
            cam = Camera(eye, mat, RIGID_RESOLUTION, RIGID_RESOLUTION, RIGID_FOVY)
            out.append(ray_depth(u.model, u.data, cam, self._geoms))
        return np.concatenate(out)

    def _search(self, points: np.ndarray, grips: np.ndarray) -> None:
        """Global pose search by ICP from 12 turns about the cloud's normal.

        Both signs of the normal unless the task keeps the object upright; ties go to the pose
        that puts the suction points at the grippers, else to the most upright one.
        """
        centre = points.mean(axis=0)
        normal = np.linalg.eigh(np.cov((points - centre).T))[1][:, 0]
        if normal[2] < 0:
            normal = -normal
        fits = []
        for sign in (1.0,) if self._planar else (1.0, -1.0):
            for k in range(12):
                rot0 = _frame_from_normal(sign * normal, 2 * math.pi * k / 12)
                fits.append(icp(points, self.tree, self.model_points, rot0, centre, 8))
        best = min(f[2] for f in fits)

        def plausibility(fit: tuple) -> float:
            rot, pos, _ = fit
            if len(self._grips) and len(grips) == len(self._grips):
                return -float(np.linalg.norm(self._grips @ rot.T + pos - grips, axis=1).mean())
            return float(rot[2, 2])

        rot, pos, _ = max((f for f in fits if f[2] < best + SEARCH_TIE), key=plausibility)
        self.rot, self.pos, _ = icp(points, self.tree, self.model_points, rot, pos, 20,
                                    reject=0.02)

    @staticmethod
    def _grippers(obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(obs["actuator/pos"], np.float64)[obs["actuator/mask"] > 0.5]

    def reset(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Search the pose around the grippers; node positions (padded)."""
        self._bind_shape()
        grips = self._grippers(obs)
        points = self.cloud(grips.mean(axis=0))
        self.n_points, self.points = len(points), points
        if len(points) >= 3:
            self._search(points, grips)
        else:  # nothing seen: the object is where the grippers are
            self.rot, self.pos = np.eye(3), grips.mean(axis=0)
        return self.nodes(obs)

    def step(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Track the pose from the last one (search again if the fit degrades)."""
        points = self.cloud(self.pos)
        self.n_points, self.points = len(points), points
        if len(points) >= 3:
            rot, pos, res = icp(points, self.tree, self.model_points, self.rot, self.pos,
                                ICP_ITERS, reject=0.02)
            if res > ICP_REINIT:
                prev = self.rot
                self._search(points, self._grippers(obs))
                # Of the symmetric copies of the new pose, keep the one nearest the last pose:
                # the nodes keep their order and the velocities stay continuous.
                copies = self.rot @ self.symmetries
                self.rot = copies[int(np.argmax(np.einsum("ij,kij->k", prev, copies)))]
            else:
                self.rot, self.pos = rot, pos
        return self.nodes(obs)

    def nodes(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The outline vertices under the estimated pose, padded like ``object/pos``."""
        out = np.zeros_like(obs["object/pos"], dtype=np.float64)
        out[: len(self.local)] = self.local @ self.rot.T + self.pos
        return out

    def true_rotation(self) -> np.ndarray:
        """The object's true rotation (for metrics)."""
        return self.env.data.xmat[self._body].reshape(3, 3).copy()

    def _true_copy(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The symmetric copy of the true pose nearest ``nodes``: its rotation and outline."""
        rot, pos = self.true_rotation(), self.env.data.xpos[self._body]
        n = len(self.local)
        copies = rot @ self.symmetries
        outlines = self.local @ copies.transpose(0, 2, 1) + pos  # (S, n, 3)
        j = int(np.linalg.norm(outlines - nodes[:n], axis=-1).mean(axis=1).argmin())
        return copies[j], outlines[j]

    def matched_truth(self, nodes: np.ndarray) -> np.ndarray:
        """The true nodes in the order of ``nodes``: the keypoint network's training target.

        That is the symmetric copy of the true pose nearest the estimate.
        """
        out = np.zeros_like(nodes)
        out[: len(self.local)] = self._true_copy(nodes)[1]
        return out

    def pose_of(self, nodes: np.ndarray) -> np.ndarray:
        """The rotation carrying the outline onto estimated ``nodes`` (Kabsch)."""
        n = len(self.local)
        return kabsch(self.local, nodes[:n])

    def place(self, nodes: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """The outline turned by ``rot`` and centred on ``nodes``' centroid (padded)."""
        n = len(self.local)
        out = np.zeros_like(nodes)
        out[:n] = (self.local - self.local.mean(axis=0)) @ rot.T + nodes[:n].mean(axis=0)
        return out

    def errors(self, nodes: np.ndarray, rot_est: np.ndarray) -> tuple[float, float]:
        """Mean node error (m) and rotation error (rad), both up to the shape's symmetry.

        A square seen turned by 90 degrees is the same object: its nodes land on the true nodes,
        in another order. Turned-over poses count as errors (the env's symmetries are turns).
        """
        rot, outline = self._true_copy(nodes)
        node = float(np.linalg.norm(outline - nodes[: len(self.local)], axis=1).mean())
        return node, rotation_angle(rot_est.T @ rot)

    def offsets(self, nodes: np.ndarray, rot_est: np.ndarray) -> np.ndarray:
        """Each node minus its point of the target pose nearest the estimated pose.

        The env's ``offset`` feature, as the env would compute it for the estimated pose.
        """
        u = self.env
        j, _ = u._nearest_target(rot_est)
        target = self.local @ u._target_rots_t[j] + u._target_pos
        out = np.zeros_like(nodes)
        out[: len(target)] = nodes[: len(target)] - target
        return out


def order_along(points: np.ndarray, start: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic distance of each point from the point nearest ``start`` over a kNN graph.

    Returns:
        ``(distances, reachable mask)``.
    """
    k = min(k, len(points) - 1)
    tree = cKDTree(points)
    dist, idx = tree.query(points, k + 1)
    rows = np.repeat(np.arange(len(points)), k)
    graph = coo_matrix((dist[:, 1:].ravel() + 1e-9, (rows, idx[:, 1:].ravel())),
                       shape=(len(points),) * 2)
    source = int(np.argmin(np.linalg.norm(points - start, axis=1)))
    geo = dijkstra(graph, directed=False, indices=source)
    return geo, np.isfinite(geo)


def fit_curve(points: np.ndarray, end0: np.ndarray, end1: np.ndarray, n: int) -> np.ndarray:
    """``n`` nodes along the curve the points trace from ``end0`` to ``end1``, ends pinned."""
    if len(points) < 4:
        return np.linspace(end0, end1, n)
    geo, ok = order_along(points, end0)
    pts, s = points[ok], geo[ok]
    total = float(s[np.argmin(np.linalg.norm(pts - end1, axis=1))])
    if not total > 0:
        return np.linspace(end0, end1, n)
    return _bin_curve(pts, s / total, max(2 * n, 8), end0, end1, n)


def _bin_curve(points: np.ndarray, u: np.ndarray, bins: int, end0: np.ndarray, end1: np.ndarray,
               n: int) -> np.ndarray:
    """``n`` nodes at equal arc length along ``end0``, the bin means, ``end1``.

    The points are averaged in ``bins`` equal bins of their arc parameter ``u`` (0..1).
    """
    which = np.clip((u * bins).astype(int), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    sums = np.stack([np.bincount(which, points[:, a], minlength=bins) for a in range(3)], 1)
    filled = counts > 0
    return resample(np.vstack([end0, sums[filled] / counts[filled, None], end1]), n)


def refit_curve(points: np.ndarray, prior: np.ndarray, end0: np.ndarray, end1: np.ndarray
                ) -> np.ndarray:
    """Track a curve: order the points by their projection on the last estimate ``prior``.

    Each point takes the arc parameter of its nearest point on the prior polyline; the points
    are averaged in equal arc bins and the result resampled to ``len(prior)`` nodes at equal
    arc length, ends pinned. Where the rope touches or crosses itself the prior keeps the
    strands apart, which a fit from scratch (:func:`fit_curve`) cannot.
    """
    n = len(prior)
    if len(points) < 4:
        return prior.copy()
    a, b = prior[:-1], prior[1:]
    ab = b - a
    seg = np.linalg.norm(ab, axis=1)
    cum = np.r_[0.0, np.cumsum(seg)]
    t = np.einsum("msk,sk->ms", points[:, None] - a[None], ab) / np.maximum(seg**2, 1e-12)
    t = np.clip(t, 0.0, 1.0)
    foot = a[None] + t[..., None] * ab[None]
    d = np.linalg.norm(points[:, None] - foot, axis=-1)
    k = d.argmin(axis=1)
    u = (cum[k] + t[np.arange(len(points)), k] * seg[k]) / max(cum[-1], 1e-12)
    return _bin_curve(points, u, 2 * n, end0, end1, n)


def resample(poly: np.ndarray, n: int) -> np.ndarray:
    """``n`` points at equal arc length along a 3-D polyline (its ends included)."""
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(poly, axis=0), axis=1))]
    q = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(q, s, poly[:, a]) for a in range(3)], 1)


class _FlexFitter:
    """A fitter that renders the env's flexes: one OpenGL renderer, rebuilt on a model switch."""

    resolution = 128  # px (square images)

    def __init__(self, env: gym.Env) -> None:
        self.env = env.unwrapped
        self._renderer: FlexDepthRenderer | None = None

    def renderer(self) -> FlexDepthRenderer:
        """The renderer of the env's current model."""
        if self._renderer is None or self._renderer.model is not self.env.model:
            self.close()
            self._renderer = FlexDepthRenderer(self.env.model, self.resolution, self.resolution)
        return self._renderer

    def close(self) -> None:
        """Release the renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class RopeFitter(_FlexFitter):
    """Curve fit of a rope seen from above in one OpenGL depth view (see the module doc)."""

    kind = "rope"
    resolution = ROPE_RESOLUTION

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.last: np.ndarray | None = None

    def _view(self, centre: np.ndarray, extent: float) -> np.ndarray:
        renderer = self.renderer()
        half = math.tan(math.radians(renderer.fovy) / 2)
        down = np.array([0.0, 0.0, -1.0])
        points = renderer.points(self.env.data, centre, down, (extent + ROPE_MARGIN) / half)
        return points + ROPE_RADIUS * down  # surface → centre line (seen from above)

    def reset(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Fit with the view aimed between the grippers, wide enough for the whole rope."""
        self.last = None
        return self.step(obs)

    def step(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Fit the rope in the current frame."""
        u = self.env
        ends = obs["actuator/pos"][:2].astype(np.float64)
        if self.last is None:
            centre, extent = ends.mean(axis=0), 0.5 * u.length
        else:
            centre = self.last.mean(axis=0)
            extent = float(np.linalg.norm(self.last - centre, axis=1).max())
        points = self._view(centre, extent)
        self.n_points, self.points = len(points), points
        n = int((obs["rope/mask"] > 0.5).sum())
        if self.last is None or len(self.last) != n:
            nodes = fit_curve(points, ends[0], ends[1], n)
        else:
            nodes = refit_curve(points, self.last, ends[0], ends[1])
        self.last = nodes
        out = np.zeros_like(obs["rope/pos"], dtype=np.float64)
        out[:n] = nodes
        return out


def hole_centre(points2d: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Centre of the largest empty circle among 2-D points that cloth surrounds, near ``guess``.

    Candidates on a grid around ``guess`` score their clearance (distance to the nearest point);
    only candidates with cloth within :data:`HOLE_ENCLOSED` in each of 8 directions count, so the
    empty space beyond the cloth's edge is never taken for the hole.
    """
    g = np.arange(-HOLE_SEARCH, HOLE_SEARCH + 1e-9, HOLE_STEP)
    cand = guess + np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    if len(points2d) == 0:
        return guess
    tree = cKDTree(points2d)
    clearance, _ = tree.query(cand)

    def enclosed(c: np.ndarray) -> bool:
        d = points2d[tree.query_ball_point(c, HOLE_ENCLOSED)] - c
        sector = ((np.arctan2(d[:, 1], d[:, 0]) + math.pi) / (2 * math.pi) * 8).astype(int)
        return len(np.unique(np.clip(sector, 0, 7))) == 8

    # Best clearance first; the first enclosed candidates are the hole.
    chosen = []
    for i in np.argsort(-clearance):
        if chosen and clearance[i] < clearance[chosen[0]] - HOLE_STEP:
            break
        if enclosed(cand[i]):
            chosen.append(i)
        elif len(chosen) == 0 and clearance[i] < HOLE_STEP:
            break
    if not chosen:
        return guess
    # Average the near-best candidates: the clearance is flat near the centre of a round hole.
    return cand[chosen].mean(axis=0)


class ClothFitter(_FlexFitter):
    """Hole fit on a cloth seen along its corners' normal (see the module doc)."""

    kind = "cloth"
    resolution = CLOTH_RESOLUTION

    def reset(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Fit the cloth nodes in the first frame."""
        return self.step(obs)

    def step(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Fit the cloth nodes in the current frame."""
        u = self.env
        mesh = u._meshes[u.hole]
        node = u._node
        corners = obs["actuator/pos"].astype(np.float64)  # the grippers hold the corners
        rest = mesh.points[:, [0, 2]]
        design = np.hstack([rest[mesh.corners], np.ones((4, 1))])
        affine, *_ = np.linalg.lstsq(design, corners, rcond=None)  # (3, 3): rest (x, z, 1) → 3-D
        mapped = np.hstack([rest[node], np.ones((len(node), 1))]) @ affine
        centre0 = np.append(mesh.centre[[0, 2]], 1.0) @ affine
        centre = corners.mean(axis=0)
        normal = np.cross(corners[2] - corners[0], corners[3] - corners[1])
        points = self.renderer().points(u.data, centre, -normal, CLOTH_DISTANCE)
        self.n_points, self.points = len(points), points
        out = np.zeros_like(obs["cloth/pos"], dtype=np.float64)
        out[: len(node)] = mapped
        near = points[np.linalg.norm(points - centre0, axis=1) < HOLE_REGION]
        if len(near) >= 10:
            mean = near.mean(axis=0)
            basis = np.linalg.svd(near - mean, full_matrices=False)[2]  # rows: e1, e2, normal
            plane = (near - mean) @ basis[:2].T
            guess = (centre0 - mean) @ basis[:2].T
            found = mean + hole_centre(plane, guess) @ basis[:2]
            shift = found - centre0
            shift -= (shift @ basis[2]) * basis[2]  # move within the cloth's plane
            rim = len(u._rim)
            out[:rim] = mapped[:rim] + shift
            # Rim depth: the plane through the nearby points.
            off = (out[:rim] - mean) @ basis[2]
            out[:rim] -= off[:, None] * basis[2]
        return out


def make_fitter(env: gym.Env) -> Any:
    """The level-1 fitter of an env.

    Raises:
        ValueError: For envs level 1 does not cover (locomotion: limbs are the robot's own,
            known from proprioception; use level 0).
    """
    from equigym.envs.manipulation.cloth_v0 import ClothHangingEnv
    from equigym.envs.manipulation.rigid_v0 import RigidManipulationEnv
    from equigym.envs.manipulation.rope_v0 import RopeEnv

    u = env.unwrapped
    if isinstance(u, RigidManipulationEnv):
        return RigidFitter(env)
    if isinstance(u, RopeEnv):
        return RopeFitter(env)
    if isinstance(u, ClothHangingEnv):
        return ClothFitter(env)
    raise ValueError(
        f"perception levels 1 and 2 cover the manipulation envs (rigid objects, ropes, cloth), "
        f"not {type(u).__name__}; use level 0 (ground truth with noise) there"
    )


__all__ = [
    "ClothFitter",
    "RigidFitter",
    "RopeFitter",
    "fit_curve",
    "hole_centre",
    "icp",
    "make_fitter",
    "order_along",
    "refit_curve",
    "resample",
    "surface_points",
]

"""Simulated depth cameras: pinhole rays cast with ``mj_multiRay`` or rendered depth (OpenGL).

Both paths return a point cloud in the world frame. The ray path needs no OpenGL but sees only
geoms (MuJoCo's ray casts skip flexes); the OpenGL path (``mujoco.Renderer``, ``MUJOCO_GL=egl``
or ``osmesa`` when headless) sees flexes too, so ropes and cloth use it.

A camera is a point ``eye`` and a rotation ``mat`` whose columns are the image's right, up and
backward directions (MuJoCo's camera convention: it looks along ``-mat[:, 2]``). A pixel
``(u, v)`` with depth ``d`` along the optical axis back-projects to
``eye + mat @ (x d / f, -y d / f, -d)`` with ``f = 0.5 H / tan(fovy / 2)`` and ``(x, y)`` the
pixel centre relative to the image centre.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import mujoco
import numpy as np

_SOLID_GROUPS = np.array([1, 1, 0, 0, 0, 0], dtype=np.uint8)  # geom groups rays can hit


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: pose in the world and image size.

    Attributes:
        eye: (3,) optical centre, m (world frame).
        mat: (3, 3) rotation whose columns are right, up and backward (looks along ``-mat[:, 2]``).
        width: Image width, px.
        height: Image height, px.
        fovy: Vertical field of view, degrees.
    """

    eye: np.ndarray
    mat: np.ndarray
    width: int
    height: int
    fovy: float

    def pixel_dirs(self) -> np.ndarray:
        """(H W, 3) directions ``(x / f, -y / f, -1)`` of every pixel centre, camera frame."""
        return _pixel_dirs(self.width, self.height, self.fovy)

    def back_project(self, depth: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """World points of the pixels ``keep`` (flat bool mask) with axial ``depth`` (flat, m)."""
        cam = self.pixel_dirs()[keep] * depth[keep, None]
        return cam @ self.mat.T + self.eye


@functools.lru_cache(maxsize=16)
def _pixel_dirs(width: int, height: int, fovy: float) -> np.ndarray:
    # The same for every frame of a camera: computed once per image size (read-only).
    f = 0.5 * height / math.tan(math.radians(fovy) / 2)
    u = (np.arange(width) + 0.5 - width / 2) / f
    v = (np.arange(height) + 0.5 - height / 2) / f
    uu, vv = np.meshgrid(u, v)  # row-major: image row v, column u
    out = np.stack([uu.ravel(), -vv.ravel(), -np.ones(uu.size)], axis=1)
    out.flags.writeable = False
    return out


def look_at(target: np.ndarray, direction: np.ndarray, distance: float,
            up_hint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eye and rotation of a camera ``distance`` behind ``target``, looking along ``direction``.

    Args:
        target: (3,) point the optical axis passes through, m.
        direction: (3,) viewing direction (normalised here).
        distance: Eye-to-target distance, m.
        up_hint: Direction the image's up should lean to (default world z, or x when the view is
            vertical).

    Returns:
        ``(eye, mat)`` for :class:`Camera`.
    """
    fwd = np.asarray(direction, dtype=np.float64)
    fwd = fwd / np.linalg.norm(fwd)
    up = np.array([0.0, 0.0, 1.0]) if up_hint is None else np.asarray(up_hint, dtype=np.float64)
    if abs(float(fwd @ up)) > 0.99 * np.linalg.norm(up):
        up = np.array([1.0, 0.0, 0.0]) if abs(fwd[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, fwd)
    mat = np.stack([right, true_up, -fwd], axis=1)
    return np.asarray(target, dtype=np.float64) - distance * fwd, mat


def ray_depth(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    camera: Camera,
    keep_geoms: np.ndarray,
    cutoff: float = 50.0,
) -> np.ndarray:
    """Point cloud of the geoms ``keep_geoms`` seen by ``camera``, by one ``mj_multiRay`` call.

    Every pixel's ray stops at the first geom of groups 0-1 it meets (static geoms included),
    so other geoms occlude the kept ones as in a real depth image; the hit geom's id is the
    segmentation. Groups 2 and up are equigym's see-through markers (the target pose's ghost
    object), which a camera does not see.

    Returns:
        (M, 3) world points of the pixels whose ray hit a geom in ``keep_geoms``.
    """
    dirs = camera.pixel_dirs()
    world = dirs @ camera.mat.T  # not unit length: distance along it is the axial depth
    scale = np.linalg.norm(world, axis=1)
    unit = world / scale[:, None]
    n = len(unit)
    geomid = np.empty(n, dtype=np.int32)
    dist = np.empty(n, dtype=np.float64)
    mujoco.mj_multiRay(model, data, camera.eye, unit.ravel(), _SOLID_GROUPS, 1, -1, geomid, dist,
                       None, n, cutoff)
    hit = np.isin(geomid, keep_geoms)
    return camera.eye + unit[hit] * dist[hit, None]


class FlexDepthRenderer:
    """Depth images of a model's flexes only (ropes, cloth), rendered with OpenGL.

    Geoms are hidden (every geom group switched off), so every finite depth pixel is a flex and
    no segmentation pass is needed. Occlusion of the flex by geoms is therefore not modelled.

    Args:
        model: The compiled model (the renderer belongs to it: make a new one after a model
            switch).
        width: Image width, px.
        height: Image height, px.

    Raises:
        RuntimeError: If no OpenGL context can be made (set ``MUJOCO_GL=egl`` or ``osmesa``
            before importing mujoco on a machine without a display).
    """

    def __init__(self, model: mujoco.MjModel, width: int, height: int) -> None:
        try:
            self._renderer = mujoco.Renderer(model, height, width)
        except Exception as err:  # mujoco raises several types for a missing GL
            raise RuntimeError(
                "level-1 perception of ropes and cloth renders depth with OpenGL, which failed "
                f"({err}); on a machine without a display set MUJOCO_GL=egl (or osmesa) before "
                "importing mujoco"
            ) from err
        self._renderer.enable_depth_rendering()
        self._option = mujoco.MjvOption()
        self._option.geomgroup[:] = 0
        self._option.sitegroup[:] = 0
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.model = model
        self._scratch = mujoco.MjData(model)
        self.width, self.height = width, height
        self.fovy = float(model.vis.global_.fovy)

    def points(self, data: mujoco.MjData, target: np.ndarray, direction: np.ndarray,
               distance: float) -> np.ndarray:
        """World points ``(M, 3)`` of the flex pixels seen from ``distance`` behind ``target``."""
        fwd = np.asarray(direction, dtype=np.float64)
        fwd = fwd / np.linalg.norm(fwd)
        # After a step, data's derived positions are those of the last substep's start; render a
        # scratch copy brought to the final state (the env's observation) instead. The env's
        # data is never written.
        scratch = self._scratch
        scratch.qpos[:] = data.qpos
        mujoco.mj_fwdPosition(self.model, scratch)
        cam = self._cam
        cam.lookat[:] = target
        cam.distance = distance
        cam.azimuth = math.degrees(math.atan2(fwd[1], fwd[0]))
        cam.elevation = math.degrees(math.asin(max(-1.0, min(1.0, fwd[2]))))
        self._renderer.update_scene(scratch, cam, scene_option=self._option)
        depth = self._renderer.render()
        # The scene keeps a stereo pair of eyes, ipd / 2 either side; mono rendering uses their
        # midpoint.
        left, right = self._renderer.scene.camera[0], self._renderer.scene.camera[1]
        eye = 0.5 * (np.asarray(left.pos, np.float64) + np.asarray(right.pos, np.float64))
        back = -np.asarray(left.forward, dtype=np.float64)
        up = np.asarray(left.up, dtype=np.float64)
        mat = np.stack([np.cross(up, back), up, back], axis=1)
        camera = Camera(eye, mat, self.width, self.height, self.fovy)
        flat = depth.ravel()  # row 0 is the image's top row, as pixel_dirs assumes
        far = float(self.model.stat.extent * self.model.vis.map.zfar)
        keep = flat < 0.99 * far
        return camera.back_project(flat.astype(np.float64), keep)

    def close(self) -> None:
        """Release the OpenGL context."""
        self._renderer.close()


__all__ = ["Camera", "FlexDepthRenderer", "look_at", "ray_depth"]

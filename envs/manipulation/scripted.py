"""Scripted controllers for the rigid tasks: proof that every task is solvable, and a baseline.

:class:`ScriptedPolicy` reads nothing but the graph observation, so it runs anywhere a trained
policy runs (it has SB3's ``predict`` signature). From the object nodes' positions ``p_i`` and
offsets it recovers the target vertices ``q_i = p_i - offset_i`` and the rigid motion taking the
object onto its (symmetry-nearest) target pose by the Kabsch method; then

* **Sliding / Insertion** (suction gripper at the centroid): velocity ``k (target - gripper)``
  from the gripper's own offset and yaw rate ``k * yaw error``. Insertion first hovers
  :data:`HOVER` above the hole and descends only once aligned (lateral error under
  :data:`ALIGN_POS`, yaw under :data:`ALIGN_ROT`).
* **InsertionTwoAgents**: each gripper moves towards its own target point (shifted out of the
  hole along the hole's normal until aligned), which turns and carries the rigid object.
* **Pushing**: go behind the object (as seen from the target), then push it along the line to
  the target; a lateral shift of the contact point turns the object towards its target yaw.

It is a proportional controller with a two-phase approach, not an optimal one: its success rate
is the bar a learned policy should clear.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from equigym.envs.manipulation.scene import TASKS, Task

GAIN = 8.0  # 1/s, proportional gain of position and yaw errors
HOVER = 0.05  # m, approach height above the hole (along its normal)
ALIGN_POS = 0.004  # m, lateral error below which an insertion descends
ALIGN_ROT = 0.04  # rad, orientation error below which an insertion descends
MAX_TURN = 3.0  # rad/s, fastest commanded turn of the two-agent object
PUSH_GAP = 0.035  # m, pusher clearance behind the object's outline
PUSH_TURN = 1.5  # lateral contact shift, in object radii per rad of yaw error (pushing)


def kabsch(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The proper rotation ``R`` minimising ``sum |R (p_i - p_mean) - (q_i - q_mean)|^2``."""
    pc, qc = p - p.mean(axis=0), q - q.mean(axis=0)
    u, _, vt = np.linalg.svd(pc.T @ qc)
    d = 1.0 if np.linalg.det(vt.T @ u.T) > 0 else -1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def rotation_angle(rot: np.ndarray) -> float:
    """Angle of a rotation matrix, rad."""
    return math.acos(min(1.0, max(-1.0, 0.5 * (float(np.trace(rot)) - 1.0))))


class Controller:
    """Base of the scripted controllers: SB3's ``predict`` over ``__call__(obs, row)``."""

    def __call__(self, obs: Mapping[str, np.ndarray], row: int = 0) -> np.ndarray:
        """The action for one (unbatched) observation; ``row`` is its env's index in a batch."""
        raise NotImplementedError

    def predict(
        self, obs: Mapping[str, np.ndarray], state: object = None, episode_start: object = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3-style ``predict`` for one observation or a batch (leading axis)."""
        if np.ndim(obs["action_mask"]) == 1:
            return self(obs), None
        n = len(obs["action_mask"])
        return np.stack([self({k: v[i] for k, v in obs.items()}, i) for i in range(n)]), None


class ScriptedPolicy(Controller):
    """Proportional controller of a rigid task, acting on graph observations only.

    Args:
        task: Task name (``"sliding"``, ``"pushing"``, ``"insertion"``, ``"two_agents"``) or an
            env (its ``unwrapped.task`` is used).
    """

    def __init__(self, task: str | object) -> None:
        if not isinstance(task, str):
            task = task.unwrapped.task.name  # type: ignore[attr-defined]
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r}; choose one of {sorted(TASKS)}.")
        self.task: Task = TASKS[task]

    def __call__(self, obs: Mapping[str, np.ndarray], row: int = 0) -> np.ndarray:
        """The action for one (unbatched) observation (stateless: ``row`` is not needed)."""
        mask = np.asarray(obs["object/mask"]) > 0.5
        p = np.asarray(obs["object/pos"], dtype=np.float64)[mask]
        q = p - np.asarray(obs["object/vec"], dtype=np.float64)[mask, 0]
        grips = np.asarray(obs["actuator/pos"], dtype=np.float64)
        grip_off = np.asarray(obs["actuator/vec"], dtype=np.float64)[:, 0]
        t = self.task
        if t.name == "pushing":
            vel = self._push(p, q, grips[0])[None]
            yaw = None
        elif t.name == "two_agents":
            vel, yaw = self._two_agents(p, q, grips, grip_off), None
        else:
            vel, yaw = self._suction(p, q, grip_off[0])
        action = (vel / t.max_speed).ravel()
        if yaw is not None:
            action = np.r_[action, yaw / t.max_yaw_rate]
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    # --- tasks --------------------------------------------------------------------------------
    def _suction(self, p: np.ndarray, q: np.ndarray, grip_off: np.ndarray):
        rot = kabsch(p, q)
        yaw_err = math.atan2(rot[1, 0], rot[0, 0])
        move = -grip_off  # gripper -> its target point, m
        if self.task.name == "insertion":
            lateral = math.hypot(move[0], move[1])
            if lateral > ALIGN_POS or abs(yaw_err) > ALIGN_ROT:
                move = np.array([move[0], move[1], move[2] + HOVER])
        vel = GAIN * move
        if self.task.planar:
            vel[2] = 0.0
        return vel[None], np.array([GAIN * yaw_err])

    def _two_agents(self, p, q, grips, grip_off) -> np.ndarray:
        del grip_off  # the rigid motion below already takes each gripper to its target point
        qc = q - q.mean(axis=0)
        # Outline order is counter-clockwise about the object's +z, the side the hole opens to.
        normal = np.cross(qc, np.roll(qc, -1, axis=0)).sum(axis=0)
        normal /= np.linalg.norm(normal)
        shift = q.mean(axis=0) - p.mean(axis=0)
        lateral = np.linalg.norm(shift - normal * float(shift @ normal))
        rot = kabsch(p, q)
        angle = rotation_angle(rot)
        aligned = lateral < ALIGN_POS and angle < ALIGN_ROT
        # Command a rigid motion (so the two grippers never pull against each other): the
        # object's mean vertex moves towards its target (held out of the hole until aligned)
        # while the object turns about it by the Kabsch rotation's axis-angle.
        axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
        sin = 0.5 * float(np.linalg.norm(axis))
        axis = axis / (2.0 * sin) if sin > 1e-3 else normal  # near pi: turn about the normal
        omega = min(GAIN * angle, MAX_TURN) * axis
        lin = GAIN * (shift + (0.0 if aligned else HOVER) * normal)
        vel = lin + np.cross(omega, grips - p.mean(axis=0))
        # Slow both grippers by one factor (a rigid motion stays rigid; the env's per-gripper
        # speed limit would bend it, and the object would twist about the gripper line).
        top = float(np.linalg.norm(vel, axis=1).max()) / self.task.max_speed
        return vel / max(top, 1.0)

    def _push(self, p: np.ndarray, q: np.ndarray, pusher: np.ndarray) -> np.ndarray:
        c, ct = p.mean(axis=0), q.mean(axis=0)
        to_target = (ct - c)[:2]
        dist = float(np.linalg.norm(to_target))
        u = to_target / dist if dist > 1e-6 else np.array([1.0, 0.0])
        side = np.array([-u[1], u[0]])
        radius = float(np.linalg.norm((p - c)[:, :2], axis=1).max())
        rot = kabsch(p, q)
        yaw_err = math.atan2(rot[1, 0], rot[0, 0])
        # Pushing off-centre turns the object: contact on the +side turns it clockwise.
        shift = float(np.clip(-PUSH_TURN * yaw_err * radius, -0.5 * radius, 0.5 * radius))
        behind = c[:2] - u * (radius + PUSH_GAP) + side * shift
        rel = pusher[:2] - c[:2]
        along, across = float(rel @ u), float(rel @ side)
        vel = np.zeros(3)
        if along < -0.5 * radius and abs(across - shift) < 0.5 * radius:
            # Behind the object: push along u (contact is wherever the outline is), correcting
            # the lateral offset.
            speed = min(1.0, GAIN * dist)
            vel[:2] = speed * u + GAIN * (behind - pusher[:2]) @ side * side
        elif np.linalg.norm(rel) < radius + PUSH_GAP:
            # Beside or in front of the object: step out sideways and back before going round.
            out = side if across >= 0 else -side
            vel[:2] = out - 0.5 * u
        else:
            vel[:2] = GAIN * (behind - pusher[:2])
            # Keep clear of the object on the way round.
            gap = np.linalg.norm(rel)
            if gap < radius + 2 * PUSH_GAP:
                vel[:2] += (rel / max(gap, 1e-6)) * 0.5
        return vel


def rollout_success(env: object, policy: ScriptedPolicy, seeds: range | list[int]) -> list[bool]:
    """Run ``policy`` for one episode per seed; return whether each ends in success."""
    out = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)  # type: ignore[attr-defined]
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(policy(obs))  # type: ignore[attr-defined]
            done = term or trunc
        out.append(bool(info["is_success"]))
    return out


__all__ = ["Controller", "ScriptedPolicy", "kabsch", "rollout_success"]

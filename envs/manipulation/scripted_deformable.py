"""Scripted controllers of the rope and cloth tasks: proof that each is solvable, and a baseline.

Each reads nothing but the graph observation (plus the episode length, to turn ``time_left`` into
a step count) and has SB3's ``predict``, so it runs wherever a trained policy runs.

* **RopeClosing** (:class:`RopeClosingScripted`): from the first observation it plans, for each
  end, three waypoints around the post: beside it on the rope's side, past it, then together
  behind it. The rope between the ends trails round the near side of the post and closes the
  loop.
* **RopeShaping** (:class:`RopeShapingScripted`): follow-the-leader drawing. The gripper at
  vertex 0 travels along a path made of the rope itself (from vertex ``n-1`` to 0) continued by
  the target curve traversed backwards and placed so that its last point is where vertex 0
  starts; the other gripper travels the same path one rope length behind. A rope dragged along
  its own length stays on the path, so it ends up lying on the target (up to the corner cutting
  of a floppy rope) exactly at the last step.
* **ClothHanging** (:class:`ClothHangingScripted`): all four corners move together (a
  translation), first to bring the hole centre onto the peg's axis in front of its tip, then
  along the axis onto the peg.

They are proportional controllers with hand-set phases, not optimal ones: their success rates
(``benchmarks/results/scripted_success.json``) are the bar a learned policy should clear.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from equigym.envs.manipulation.scripted import Controller, ScriptedPolicy

GAIN = 4.0  # 1/s, proportional gain on position errors
CLOSE_SIDE = 0.8  # m, lateral clearance of the rope ends passing the post
CLOSE_BEHIND = 0.7  # m, how far past the post the ends meet
CLOSE_MEET = 0.05  # m, half the final gap between the ends
WAYPOINT_TOL = 0.2  # m, distance at which a rope end moves on to its next waypoint
PEG_APPROACH = 0.55  # m, hole-centre stand-off in front of the peg's centre before threading
PEG_ALIGN = 0.02  # m, radial error below which the hole slides onto the peg
SLIDE_SPEED = 0.6  # m/s, speed of the cloth along the peg
CORNER_GAIN = 12.0  # 1/s, gain of the cloth corners on their planned places
CORNER_TOL = 0.03  # m, corners this close to their planned place have arrived


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else np.zeros_like(v)


def _limit(v: np.ndarray, max_speed: float) -> np.ndarray:
    """Velocities (rows) scaled to actions: divided by ``max_speed``, length at most 1."""
    a = v / max_speed
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.maximum(n, 1.0)


class _Scripted(Controller):
    """Shared per-episode memory; subclasses implement ``act(obs, memory)`` for one observation.

    Args:
        episode_steps: The env's episode length (turns ``time_left`` into a step count); default:
            the task's.
    """

    max_speed = 1.0
    default_steps = 200

    def __init__(self, episode_steps: int | None = None) -> None:
        self.episode_steps = int(self.default_steps if episode_steps is None else episode_steps)
        self._memory: dict[int, dict[str, Any]] = {}

    def _step_index(self, obs: Mapping[str, np.ndarray]) -> int:
        return int(round((1.0 - float(obs["global/x"][0])) * self.episode_steps))

    def __call__(self, obs: Mapping[str, np.ndarray], row: int = 0) -> np.ndarray:
        """The action for one (unbatched) observation (``row``: which env of a batch)."""
        if self._step_index(obs) == 0 or row not in self._memory:
            self._memory[row] = {}  # a new episode: plan afresh
        vel = self.act(obs, self._memory[row])
        return _limit(vel, self.max_speed).ravel().astype(np.float32)

    def act(self, obs: Mapping[str, np.ndarray], memory: dict[str, Any]) -> np.ndarray:
        """Gripper velocities (m/s, one row per gripper); ``memory`` persists per episode."""
        raise NotImplementedError


class RopeClosingScripted(_Scripted):
    """Carry both rope ends round the post and bring them together behind it."""

    max_speed = 5.0

    def act(self, obs: Mapping[str, np.ndarray], memory: dict[str, Any]) -> np.ndarray:
        """Velocities of the two ends towards their current waypoints."""
        rope = np.asarray(obs["rope/pos"], dtype=np.float64)
        grips = np.asarray(obs["actuator/pos"], dtype=np.float64)
        if not memory:
            hanger = rope[0] - np.asarray(obs["rope/vec"][0, 0], dtype=np.float64)
            centre = rope.mean(axis=0)
            d = _unit((hanger - centre) * (1.0, 1.0, 0.0))
            n = np.array([-d[1], d[0], 0.0])
            side0 = 1.0 if float((grips[0] - centre) @ n) >= float((grips[1] - centre) @ n) \
                else -1.0
            memory["waypoints"] = [
                [hanger - 0.3 * d + s * CLOSE_SIDE * n,
                 hanger + CLOSE_BEHIND * d + s * CLOSE_SIDE * n,
                 hanger + CLOSE_BEHIND * d + s * CLOSE_MEET * n]
                for s in (side0, -side0)
            ]
            memory["phase"] = [0, 0]
        vel = np.zeros((2, 3))
        for g in range(2):
            wps, k = memory["waypoints"][g], memory["phase"][g]
            if k < len(wps) - 1 and np.linalg.norm(wps[k] - grips[g]) < WAYPOINT_TOL:
                memory["phase"][g] = k = k + 1
            err = wps[k] - grips[g]
            # Full speed towards intermediate waypoints, proportional at the last one.
            vel[g] = _unit(err) * self.max_speed if k < len(wps) - 1 else GAIN * err
        vel[:, 2] = 0.0
        return vel


class RopeShapingScripted(_Scripted):
    """Drag the rope along its own length into the target curve (follow-the-leader)."""

    max_speed = 5.0

    def act(self, obs: Mapping[str, np.ndarray], memory: dict[str, Any]) -> np.ndarray:
        """Velocities of both ends along the drawing path (feedback plus feed-forward)."""
        rope = np.asarray(obs["rope/pos"], dtype=np.float64)
        grips = np.asarray(obs["actuator/pos"], dtype=np.float64)
        if not memory:
            # Target relative to its centroid: offset_i = (p_i - t_i) - mean(p - t).
            rel = rope - rope.mean(axis=0) - np.asarray(obs["rope/vec"][:, 0], dtype=np.float64)
            target = rel - rel[-1] + rope[0]  # its last point where the head (vertex 0) starts
            path = np.vstack([rope[::-1], target[::-1][1:]])
            arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
            rope_len = float(arc[len(rope) - 1])
            memory.update(path=path, arc=arc, rope_len=rope_len,
                          speed=(arc[-1] - rope_len) / (self.episode_steps * 0.02))
        path, arc = memory["path"], memory["arc"]
        k = self._step_index(obs)
        travelled = min(memory["speed"] * 0.02 * (k + 1), arc[-1] - memory["rope_len"])
        vel = np.zeros((2, 3))
        for g, s in enumerate((memory["rope_len"] + travelled, travelled)):
            goal = _along(path, arc, s)
            ahead = _along(path, arc, min(s + 0.05, arc[-1]))
            tangent = (ahead - goal) / 0.05 if s < arc[-1] - 1e-9 else np.zeros(3)
            vel[g] = 10.0 * (goal - grips[g]) + memory["speed"] * tangent
        vel[:, 2] = 0.0
        return vel


def _along(path: np.ndarray, arc: np.ndarray, s: float) -> np.ndarray:
    return np.array([np.interp(s, arc, path[:, i]) for i in range(3)])


class ClothHangingScripted(_Scripted):
    """Translate the cloth by its corners: hole in front of the peg, on its axis, then onto it.

    The corners follow a planned rigid translation (they are what the grippers move directly;
    the hole lags and sways behind them). Whenever the corners have arrived, the hole's measured
    offset from the peg's axis corrects the plan; once it is under :data:`PEG_ALIGN` the plan
    slides the cloth along the axis onto the peg at :data:`SLIDE_SPEED`.
    """

    max_speed = 2.0
    default_steps = 100

    def act(self, obs: Mapping[str, np.ndarray], memory: dict[str, Any]) -> np.ndarray:
        """The same velocity for the four corners, towards their planned places."""
        rim = (np.asarray(obs["cloth/x"][:, 0]) > 0.5) & (np.asarray(obs["cloth/mask"]) > 0.5)
        pos = np.asarray(obs["cloth/pos"], dtype=np.float64)[rim]
        off = np.asarray(obs["cloth/vec"], dtype=np.float64)[rim, 0]
        corners = np.asarray(obs["actuator/pos"], dtype=np.float64)
        centre = pos.mean(axis=0)
        peg = (pos - off).mean(axis=0)
        axis = _unit(np.asarray(obs["global/vec"][0], dtype=np.float64))
        if not memory:
            memory.update(corners=corners.copy(), shift=peg + PEG_APPROACH * axis - centre,
                          threading=False)
        goal = memory["corners"] + memory["shift"]
        arrived = float(np.abs(goal - corners).max()) < CORNER_TOL
        if arrived and not memory["threading"]:
            gap = centre - peg
            radial = gap - float(gap @ axis) * axis
            if float(np.linalg.norm(radial)) < PEG_ALIGN:
                memory["threading"] = True
            else:
                memory["shift"] = memory["shift"] - radial
        if memory["threading"]:  # the plan slides on to the peg's centre at SLIDE_SPEED
            step = min(SLIDE_SPEED * 0.02, PEG_APPROACH - memory.get("slid", 0.0))
            memory["slid"] = memory.get("slid", 0.0) + step
            memory["shift"] = memory["shift"] - step * axis
        goal = memory["corners"] + memory["shift"]
        return CORNER_GAIN * (goal - corners)


def scripted_policy(env_or_id: Any) -> Controller:
    """The scripted controller of a manipulation env (an env, or a registered id).

    Raises:
        ValueError: If the env has no scripted controller (locomotion).
    """
    from equigym.envs.manipulation.cloth_v0 import ClothHangingEnv
    from equigym.envs.manipulation.rigid_v0 import RigidManipulationEnv
    from equigym.envs.manipulation.rope_v0 import RopeEnv
    from equigym.envs.registration import DEFORMABLE_IDS, MANIPULATION_IDS

    deformable = {"rope_closing": RopeClosingScripted, "rope_shaping": RopeShapingScripted,
                  "cloth_hanging": ClothHangingScripted}
    if isinstance(env_or_id, str):
        if env_or_id in MANIPULATION_IDS:
            return ScriptedPolicy(MANIPULATION_IDS[env_or_id])
        if env_or_id in DEFORMABLE_IDS:
            return deformable[DEFORMABLE_IDS[env_or_id]]()
    else:
        env = env_or_id.unwrapped
        if isinstance(env, RigidManipulationEnv):
            return ScriptedPolicy(env)
        if isinstance(env, RopeEnv):
            return deformable[f"rope_{env.task}"](env.episode_steps)
        if isinstance(env, ClothHangingEnv):
            return ClothHangingScripted(env.episode_steps)
    raise ValueError(f"No scripted controller for {env_or_id!r}: only the manipulation envs have "
                     "one.")


def play_episode(
    env: Any, controller: Controller | None, seed: int, rng: np.random.Generator,
    noise: float = 0.0,
) -> Iterator[tuple[dict[str, np.ndarray], dict[str, Any], bool]]:
    """Play one episode of ``controller`` plus Gaussian action noise (``None``: uniform actions).

    Yields ``(obs, info, done)`` after the reset and after every step, ``done`` true on the
    last one. A step whose physics went unstable ends the episode unseen (it is no motion to
    learn from or score). ``rng`` draws the noise, in the same order on every call.
    """
    obs, info = env.reset(seed=seed)
    done = False
    yield obs, info, done
    while not done:
        if controller is None:
            action = rng.uniform(-1.0, 1.0, env.action_space.shape)
        else:
            action = controller.predict({k: v[None] for k, v in obs.items()},
                                        deterministic=True)[0][0]
            action = action + noise * rng.standard_normal(action.shape)
        action = np.clip(action, env.action_space.low, env.action_space.high)
        obs, _, term, trunc, info = env.step(action.astype(np.float32))
        if info.get("sim_unstable", False):
            return
        done = term or trunc
        yield obs, info, done


__all__ = ["ClothHangingScripted", "RopeClosingScripted", "RopeShapingScripted", "play_episode",
           "scripted_policy"]

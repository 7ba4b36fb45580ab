"""NERO-style orbit analysis: a policy's behaviour along rotations of one initial scene.

After "NERO: Non-Equivariance Revealed on Orbits" (Zhao, Kindlmann et al.): instead of one
number, look at a policy along a group **orbit** of each initial state, against the orbit's
**consensus** (there is no ground-truth action in RL). For group elements ``g_k`` (rotations
about gravity by ``theta_k = 2 pi k / K``, optionally composed with tilts where the task's
symmetry allows them) and an initial state ``s``:

* **policy error** (exact: the observation is transformed by the spec's geometric types,
  :func:`equigym.graph.transform_observation`; on states along the unrotated episode):
  ``e(g) = |rho(g)^-1 mu(g s) - c(s)| / (|c(s)| + eps)`` with the consensus
  ``c(s) = mean_g rho(g)^-1 mu(g s)``; the same for the value (``|V(g s) - mean V| / ...``).
* **scene error**: the same at the first state of episodes whose scene the simulator rotated
  (reset options), so the env's own reproduction of a rotated scene is included.
* **return** ``J(g)`` of the deterministic episode from the rotated scene.

An exactly equivariant policy has a flat policy error (float32 rounding, ~1e-6); its return
varies only through asymmetries of the simulation (:data:`PHYSICS_NOTES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from equigym.envs.mujoco_base import rot_y, rot_z
from equigym.evaluation.conditions import Condition, family_of
from equigym.evaluation.rollout import EnvBatch, Run, policy_actor
from equigym.graph import transform_action, transform_observation
from equigym.policies.equivariance import policy_outputs

EPS = 1e-6
"""Added to the consensus norm in relative errors."""

PHYSICS_NOTES: dict[str, str] = {
    "locomotion": (
        "The floor is an infinite plane and friction cones are elliptic (isotropic about the "
        "contact normal), so nothing in the model prefers a direction about gravity. Returns "
        "still differ along the orbit through floating-point rounding: each angle rounds the "
        "policy's float32 and the simulator's float64 arithmetic differently, and falls amplify "
        "1e-7 differences into different episodes within ~100 steps (measured on a walker: an "
        "exactly equivariant policy's returns spread by ~10 along the orbit, an MLP's by ~45, "
        "and the equivariant policy's returns were found to repeat with period 180 degrees, "
        "where rotating is close to a sign flip). MuJoCo's default pyramidal cones would add a "
        "real anisotropy (a box slides 0.41 m along an axis but 0.57 m diagonally)."
    ),
    "rigid": (
        "The whole scene (object, fixture, grippers, target) turns with the orbit, the table is "
        "an infinite plane and friction cones are elliptic. Remaining asymmetries: solver "
        "rounding in rotated coordinates and contact chaos (insertion contacts are "
        "discontinuous); the yaw-rate action is clipped per entry like every action (SB3's "
        "clipping), which commutes with rotations about gravity."
    ),
    "deformable": (
        "No gravity and no floor contact: the flex and the peg or post turn with the scene. "
        "Remaining asymmetries: rounding in the edge-equality constraints and the soft "
        "velocity servos; SB3's per-entry clipping of actions outside [-1, 1] (a long gripper "
        "command is clipped per axis before the env's length limit), which does not commute "
        "with rotations."
    ),
}
"""What breaks the symmetry in each env family's simulation (named in the report)."""


@dataclass(frozen=True)
class OrbitElement:
    """One group element: a rotation about gravity, optionally after a tilt."""

    angle: float
    """Rotation about the vertical, rad."""
    tilt: float
    """Rotation about the horizontal y axis applied first, rad (0: none)."""

    @property
    def rotation(self) -> np.ndarray:
        """The 3x3 rotation ``Rz(angle) Ry(tilt)``."""
        return rot_z(self.angle) @ rot_y(self.tilt)


TILTABLE: tuple[str, ...] = ("equigym/InsertionTwoAgents-v0", "equigym/ClothHanging-v0")
"""Envs whose scenes may turn about any axis (their reset accepts any ``scene_rotation``)."""


def orbit_elements(
    k: int, tilts_deg: Sequence[float] = (), env_id: str | None = None
) -> list[OrbitElement]:
    """``k`` rotations about gravity, for each tilt (0 first).

    Raises:
        ValueError: For fewer than 2 angles, or tilts on an env (``env_id``) whose symmetry is
            rotations about gravity only.
    """
    if k < 2:
        raise ValueError(f"--orbit needs at least 2 angles, got {k}")
    if env_id is not None and any(tilts_deg) and env_id not in TILTABLE:
        raise ValueError(
            f"{env_id} has gravity (or its table) fixed: its orbit has no tilts; "
            f"--orbit-tilts applies to {', '.join(TILTABLE)}"
        )
    tilts = [0.0, *(np.deg2rad(t) for t in tilts_deg if t != 0)]
    return [OrbitElement(2 * np.pi * i / k, float(b)) for b in tilts for i in range(k)]


def scene_options(env_id: str, element: OrbitElement, info: dict[str, Any]) -> dict[str, Any]:
    """Reset options that turn an episode's initial scene by ``element``.

    Locomotion turns the heading and the target direction together (rotations about gravity
    only); manipulation envs take the rotation itself (``scene_rotation``).

    Raises:
        ValueError: For a tilt on a task whose symmetry is rotations about gravity only.
    """
    if family_of(env_id) == "locomotion":
        if element.tilt:
            raise ValueError(f"{env_id} has gravity fixed: its orbit has no tilts")
        return {"heading": info["heading"] + element.angle,
                "target_angle": info["target_angle"] + element.angle}  # fmt: skip
    return {"scene_rotation": element.rotation}


class _Capture:
    """``on_step`` hook: the first batch (every orbit member) and some identity-member states."""

    def __init__(self, every: int, most: int) -> None:
        self.every, self.most = every, most
        self.first: dict[str, np.ndarray] = {}
        self.states: list[dict[str, np.ndarray]] = []

    def __call__(self, step: int, obs: dict[str, np.ndarray], done: list[bool]) -> None:
        if step == 0:
            self.first = obs
        # States of the identity's own episode only (an ended episode repeats its last one).
        if step % self.every == 0 and len(self.states) < self.most and not done[0]:
            self.states.append({k: v[:1] for k, v in obs.items()})  # member 0: the identity


def _relative(back: np.ndarray) -> np.ndarray:
    """Relative deviation of each orbit member (axis 0) from the consensus (their mean)."""
    consensus = back.mean(axis=0, keepdims=True)
    dev = np.linalg.norm((back - consensus).reshape(back.shape[0], -1), axis=-1)
    return dev / (np.linalg.norm(consensus) + EPS)


def _policy_errors(run: Run, obs: dict[str, np.ndarray], elements: list[OrbitElement]
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per element: relative mean-action and value errors on a batch of states (mean over it)."""
    backs, values = [], []
    for el in elements:
        rot = el.rotation
        mean, _, value = policy_outputs(run.net, transform_observation(obs, run.spec, rot))
        backs.append(transform_action(mean, run.spec, rot.T))
        values.append(value)
    backs_a, values_a = np.stack(backs), np.stack(values)  # (G, B, A), (G, B)
    act = np.stack([_relative(backs_a[:, b]) for b in range(backs_a.shape[1])], axis=1)
    val = np.stack([_relative(values_a[:, b]) for b in range(values_a.shape[1])], axis=1)
    return act.mean(axis=1), val.mean(axis=1)


def run_orbit(
    run: Run,
    condition: Condition,
    elements: list[OrbitElement],
    seeds: Sequence[int],
    state_every: int = 10,
    max_states: int = 10,
    wrapper: Any = "trained",
) -> dict[str, Any]:
    """Orbit analysis of ``run`` on the initial scenes of ``seeds``.

    Args:
        run: The trained run.
        condition: Where the initial scenes come from (episode ``j`` gets the condition's
            ``j``-th episode arguments, e.g. its morphology).
        elements: The group elements (:func:`orbit_elements`).
        seeds: One initial scene per seed.
        state_every: Policy errors use every ``state_every``-th state of the unrotated episode.
        max_states: ... up to this many states per scene.
        wrapper: The env wrapper to play through (default ``"trained"``: the run's own modules,
            ``run.wrapper``; ``evaluate --perception`` passes its choice).

    Returns:
        Per element (``angle_deg``, ``tilt_deg``): ``policy_error`` and ``value_error`` (mean
        over scenes and states), ``scene_error`` (first state of the rotated episode),
        ``return_mean`` and ``return_std`` over scenes, and ``returns`` per scene; plus
        ``return_spread`` (mean over scenes of the std over the orbit) and the scenes' count.
    """
    env_id = run.env_id
    n = len(elements)
    pol, val, scene, rets = [], [], [], []
    for j, seed in enumerate(seeds):
        one = Condition(condition.name, condition.split, condition.episode_kwargs(j))
        batch = EnvBatch(env_id, one, n, wrapper=run.wrapper if wrapper == "trained" else wrapper)
        act = policy_actor(run.net, batch.action_space, deterministic=True)
        try:
            _, info = batch.envs[0].reset(seed=seed)  # the unrotated scene (heading, target...)
            options = [scene_options(env_id, el, info) for el in elements]
            capture = _Capture(state_every, max_states)
            episodes = batch.run(act, [seed] * n, options, on_step=capture)
        finally:
            batch.close()
        states, first = capture.states, capture.first
        obs = {k: np.concatenate([s[k] for s in states]) for k in states[0]}
        p, v = _policy_errors(run, obs, elements)
        pol.append(p)
        val.append(v)
        means, _, _ = policy_outputs(run.net, first)
        back = np.stack([transform_action(means[i], run.spec, el.rotation.T)
                         for i, el in enumerate(elements)])  # fmt: skip
        scene.append(_relative(back))
        rets.append([e.ret for e in episodes])
    rets_a = np.array(rets)  # (scenes, elements)
    rows = [
        {
            "angle_deg": round(float(np.rad2deg(el.angle)), 3),
            "tilt_deg": round(float(np.rad2deg(el.tilt)), 3),
            "policy_error": float(np.mean([p[i] for p in pol])),
            "value_error": float(np.mean([v[i] for v in val])),
            "scene_error": float(np.mean([s[i] for s in scene])),
            "return_mean": float(rets_a[:, i].mean()),
            "return_std": float(rets_a[:, i].std()),
            "returns": [round(float(r), 4) for r in rets_a[:, i]],
        }
        for i, el in enumerate(elements)
    ]
    return {
        "condition": condition.name,
        "scenes": len(seeds),
        "elements": rows,
        "max_policy_error": float(max(r["policy_error"] for r in rows)),
        "max_scene_error": float(max(r["scene_error"] for r in rows)),
        "return_spread": float(rets_a.std(axis=1).mean()),
        "return_std_across_scenes": float(rets_a.mean(axis=1).std()),
        "physics_notes": PHYSICS_NOTES[family_of(env_id)],
    }


__all__ = [
    "PHYSICS_NOTES",
    "TILTABLE",
    "OrbitElement",
    "orbit_elements",
    "run_orbit",
    "scene_options",
]

"""Rollout windows for training and scoring forecasters (numpy; no torch).

:func:`collect_tracks` plays episodes of an equigym env with its scripted controller (plus
Gaussian action noise, so motions vary) or uniformly random actions, and records the positions of
one node type every step. :func:`windows` cuts each episode's track into (past, future) pairs;
windows never cross a reset.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from equigym.graph import GraphSpec


@dataclass
class Tracks:
    """Per episode, node positions over time ``(T_e, N, 3)`` and the node mask ``(N,)``.

    Masks are per episode: envs that draw a shape or a cloth hole per episode change their real
    node count.
    """

    episodes: list[np.ndarray]
    masks: list[np.ndarray]
    node_type: str
    env_id: str

    def subset(self, part: slice) -> Tracks:
        """The episodes (and masks) in ``part``."""
        return Tracks(self.episodes[part], self.masks[part], self.node_type, self.env_id)


def default_node_type(spec: GraphSpec) -> str:
    """The first node type of a graph spec that is not an actuator (rope, cloth...)."""
    names = [n.name for n in spec.node_types]
    return next((n for n in names if n != "actuator"), names[0])


def collect_tracks(
    env_id: str,
    episodes: int,
    seed: int = 0,
    policy: str = "scripted",
    noise: float = 0.3,
    node_type: str | None = None,
    env_kwargs: dict | None = None,
) -> Tracks:
    """Play ``episodes`` episodes and record a node type's positions every step.

    Args:
        env_id: An equigym id.
        episodes: Episodes to record (seeds ``seed``, ``seed + 1``, ...).
        seed: First seed.
        policy: ``"scripted"`` (manipulation tasks' controller, plus noise) or ``"random"``.
        noise: Std of the Gaussian noise added to scripted actions (clipped to the action box).
        node_type: Node type to record (default: :func:`default_node_type`).
        env_kwargs: Constructor arguments of the env.

    Raises:
        ValueError: For an unknown policy or node type, or ``episodes < 1``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if policy not in ("scripted", "random"):
        raise ValueError(f"policy must be 'scripted' or 'random', got {policy!r}")
    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as err:
        raise ValueError(f"cannot make {env_id!r}: {err}") from None
    rng = np.random.default_rng(seed)
    out, masks = [], []
    try:
        node_type = node_type or default_node_type(env.get_wrapper_attr("graph_spec"))
        key = f"{node_type}/pos"
        if key not in env.observation_space.spaces:
            names = [n.name for n in env.unwrapped.graph_spec.node_types]
            raise ValueError(f"{env_id} has no node type {node_type!r}; choose one of {names}")
        from equigym.envs.manipulation.scripted_deformable import play_episode, scripted_policy

        # scripted_policy raises for envs without a controller
        controller = scripted_policy(env) if policy == "scripted" else None
        for ep in range(episodes):
            frames = [obs for obs, _, _ in play_episode(env, controller, seed + ep, rng, noise)]
            masks.append(np.asarray(frames[0][f"{node_type}/mask"], dtype=np.float32))
            out.append(np.stack([np.asarray(obs[key], dtype=np.float32) for obs in frames]))
    finally:
        env.close()
    return Tracks(out, masks, node_type, env_id)


def windows(
    tracks: Tracks, history: int, horizon: int, stride: int = 1, pad_start: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """All (past + future) windows of the tracks and their node masks.

    Args:
        tracks: Recorded episodes.
        history: Past frames.
        horizon: Future frames.
        stride: Step between window starts.
        pad_start: Also windows whose past begins before the reset, padded with the reset frame
            (what :class:`~equigym.modules.forecast.wrapper.ForecastWrapper` feeds right after a
            reset).

    Returns:
        ``(W, N, history + horizon, 3)`` positions and ``(W, N)`` masks.
    """
    span = history + horizon
    out, masks = [], []
    first = -(history - 1) if pad_start else 0
    for ep, mask in zip(tracks.episodes, tracks.masks, strict=True):
        padded = np.concatenate([np.repeat(ep[:1], -first, axis=0), ep]) if first else ep
        for s in range(0, len(padded) - span + 1, stride):
            out.append(padded[s : s + span].transpose(1, 0, 2))
            masks.append(mask)
    if not out:
        raise ValueError(f"no episode is longer than history + horizon = {span} frames")
    return np.stack(out).astype(np.float32), np.stack(masks).astype(np.float32)


__all__ = ["Tracks", "collect_tracks", "default_node_type", "windows"]

"""Deterministic evaluation of a trained model, episode by episode and sub-env by sub-env."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv


def evaluate(
    model: BaseAlgorithm, env: VecEnv, episodes_per_env: int, deterministic: bool = True
) -> list[list[dict[str, float]]]:
    """Run ``episodes_per_env`` complete episodes in every sub-env of ``env``.

    Sub-envs must be wrapped in SB3's ``Monitor`` (as :func:`equigym.agents.make_vec_env` does),
    whose ``info["episode"]`` gives the undiscounted, unnormalised return and the length.

    Args:
        model: A trained SB3 model (anything with ``predict``).
        env: Vector env to evaluate in; it is reset first.
        episodes_per_env: Episodes to record per sub-env (>= 1).
        deterministic: Use the policy's mean action.

    Returns:
        Per sub-env, a list of ``{"return": r, "length": l}`` dicts.
    """
    if episodes_per_env < 1:
        raise ValueError(f"episodes_per_env must be >= 1, got {episodes_per_env}")
    results: list[list[dict[str, float]]] = [[] for _ in range(env.num_envs)]
    obs = env.reset()
    while any(len(r) < episodes_per_env for r in results):
        actions, _ = model.predict(obs, deterministic=deterministic)  # type: ignore[arg-type]
        obs, _, dones, infos = env.step(actions)
        for i, done in enumerate(dones):
            if done and len(results[i]) < episodes_per_env:
                ep = infos[i]["episode"]
                record = {"return": float(ep["r"]), "length": float(ep["l"])}
                if "is_success" in infos[i]:  # tasks with a success criterion report it
                    record["success"] = float(infos[i]["is_success"])
                results[i].append(record)
    return results


class RandomPolicy:
    """Uniformly random actions in the action space: the reference point for a trained return.

    Has the ``predict`` signature of an SB3 model, so :func:`evaluate` runs it unchanged.
    """

    def __init__(self, action_space: spaces.Box, seed: int = 0) -> None:
        self.low, self.high = action_space.low, action_space.high
        self.rng = np.random.default_rng(seed)

    def predict(self, obs: dict[str, np.ndarray], deterministic: bool = True) -> tuple:
        """Random actions for a batch of observations (``deterministic`` is ignored)."""
        n = len(next(iter(obs.values())))
        return self.rng.uniform(self.low, self.high, (n, *self.low.shape)).astype(np.float32), None


def summarize(episodes: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and standard deviation of return and length over ``episodes``."""
    returns = np.array([e["return"] for e in episodes], dtype=np.float64)
    lengths = np.array([e["length"] for e in episodes], dtype=np.float64)
    out = {
        "episodes": len(episodes),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "mean_length": float(lengths.mean()),
        "std_length": float(lengths.std()),
    }
    successes = [e["success"] for e in episodes if "success" in e]
    if successes:
        out["success_rate"] = float(np.mean(successes))
    return out


__all__ = ["RandomPolicy", "evaluate", "summarize"]

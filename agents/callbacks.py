"""Training-time evaluation logged to TensorBoard: return, success rate, equivariance error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from equigym.agents.checkpoint import atomic_write
from equigym.agents.evaluation import evaluate, summarize
from equigym.graph import GraphSpec
from equigym.policies.equivariance import equivariance_error, symmetry_transforms


class PeriodicEvalCallback(BaseCallback):
    """Every ``eval_freq`` env steps, evaluate the current policy and log it.

    Logged under ``eval/``: ``mean_return``, ``std_return``, ``mean_length``, ``success_rate``
    (when the env reports ``info["is_success"]``) and ``equivariance_error`` (largest deviation
    of the action mean, log-std and value under rotations about gravity plus translations, on a
    fixed batch of states sampled at the start), so a learning curve and the policy's symmetry
    can be read side by side.

    Args:
        eval_env: Vector env of Monitor-wrapped equigym envs (one episode per sub-env per
            evaluation, deterministic actions, the same seeds every time).
        eval_freq: Environment steps between evaluations.
        spec: The envs' graph spec.
        seed: Seed of the evaluation episodes and of the test transformations.
        history_path: JSON file that gets the history (a list of the logged dicts with their
            ``timesteps``) rewritten atomically after every evaluation, so a killed run keeps its
            curve. Entries already in the file (a resumed run) are kept in front, up to the step
            count training resumes from (later ones belong to the lost interval and are redone).
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_freq: int,
        spec: GraphSpec,
        seed: int = 0,
        history_path: Path | None = None,
    ) -> None:
        super().__init__()
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be >= 1, got {eval_freq}")
        self.eval_env = eval_env
        self.eval_freq = int(eval_freq)
        self.spec = spec
        self.seed = int(seed)
        self.history: list[dict[str, float]] = []
        """This run's evaluations (without the entries of a resumed run's file)."""
        self.history_path = None if history_path is None else Path(history_path)
        self._past: list[dict[str, float]] = []
        if self.history_path is not None and self.history_path.exists():
            self._past = json.loads(self.history_path.read_text())
        self._last = 0
        self._states: dict[str, np.ndarray] | None = None
        self._transforms = symmetry_transforms(np.random.default_rng(seed))["about_gravity"]

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps
        self._past = [h for h in self._past if h["timesteps"] <= self.num_timesteps]
        self._write_history()  # a run that never evaluates still leaves its (trimmed) file
        # A fixed batch of states from a few random steps, for the equivariance error.
        self.eval_env.seed(self.seed)
        obs = self.eval_env.reset()
        for _ in range(3):
            actions = np.stack([self.eval_env.action_space.sample()
                                for _ in range(self.eval_env.num_envs)])
            obs, *_ = self.eval_env.step(actions)
        self._states = {k: np.array(v, copy=True) for k, v in obs.items()}

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.eval_freq:
            self._last = self.num_timesteps
            self.run_evaluation()
        return True

    def run_evaluation(self) -> dict[str, float]:
        """Evaluate now, log under ``eval/`` and return the logged values."""
        self.eval_env.seed(self.seed)  # the same episodes every time: curves compare policies
        per_env = evaluate(self.model, self.eval_env, episodes_per_env=1, deterministic=True)
        result = summarize([ep for eps in per_env for ep in eps])
        net = getattr(self.model.policy, "net", None)
        if net is not None and self._states is not None:
            was_training = net.training
            net.eval()
            err = equivariance_error(net, self._states, self.spec, self._transforms)
            net.train(was_training)
            result["equivariance_error"] = err["max"]
        for key in ("mean_return", "std_return", "mean_length", "success_rate",
                    "equivariance_error"):
            if key in result:
                self.logger.record(f"eval/{key}", result[key])
        self.history.append({"timesteps": self.num_timesteps, **result})
        self._write_history()
        return result

    def _write_history(self) -> None:
        if self.history_path is not None:
            text = json.dumps(self._past + self.history, indent=2) + "\n"
            atomic_write(lambda tmp: tmp.write_text(text), self.history_path)


__all__ = ["PeriodicEvalCallback"]

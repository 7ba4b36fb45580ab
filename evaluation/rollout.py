"""Trained runs loaded without unpickling, agents that act on batches, lock-step episodes.

:func:`load_run` rebuilds a run's graph policy from the plain-JSON ``config.json`` and
``graph_spec.json`` of its folder and the weights of its model file
(:func:`equigym.agents.checkpoint.load_policy_weights`: no pickle). :class:`EnvBatch` holds one
env per episode of a condition and steps them in lock step, so one batched forward pass serves
every episode and every agent (trained, random, scripted) sees the same seeded episodes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from equigym import policies
from equigym.agents.checkpoint import list_checkpoints, load_policy_weights, read_json
from equigym.evaluation.conditions import Condition
from equigym.graph import GraphSpec, stack

Act = Callable[[dict[str, np.ndarray]], np.ndarray]
"""An agent: a batch of observations -> a batch of actions (numpy)."""


@dataclass
class Run:
    """A trained run, ready to act."""

    path: Path
    """The run folder."""
    label: str
    """Name in tables and plots (``<policy>`` or ``<policy>:<folder>`` when ambiguous)."""
    config: dict[str, Any]
    """Its ``config.json``."""
    spec: GraphSpec
    """Its graph spec (observation layout)."""
    model_file: Path
    """The model file the weights came from."""
    timesteps: int | None
    """Training steps of that model."""
    net: policies.GraphPolicy = field(repr=False)
    """The graph policy (eval mode, CPU)."""

    @property
    def wrapper(self) -> Callable[[gym.Env], gym.Env] | None:
        """The env wrapper the run trained with (perception, forecaster), or ``None``."""
        return self.module_wrapper()

    def module_wrapper(self, perception: str = "trained", perception_net: Any = None
                       ) -> Callable[[gym.Env], gym.Env] | None:
        """The run's modules as an env wrapper, its perception replaced if asked.

        The forecaster and keypoint network are the run folder's copies (``forecaster.pt``,
        ``keypoints.pt``, written by ``train.py``), else the files its config names.

        Args:
            perception: ``"trained"`` (the run's own), ``"none"`` (the simulator's positions) or
                a level ``"0"``, ``"1"``, ``"2"`` (level 0 with its default sensor model).
            perception_net: Level 2's keypoint network folder.
        """
        from equigym.modules import module_wrapper
        from equigym.train import perception_settings

        path = self.config.get("forecast")
        if path and (self.path / "forecaster.pt").is_file():
            path = self.path / "forecaster.pt"
        if perception == "trained":
            net = self.config.get("perception_net")
            if net and (self.path / "keypoints.pt").is_file():
                net = self.path / "keypoints.pt"
            return module_wrapper(path or None, self.config.get("perception"), net,
                                  perception_settings(self.config))
        level = None if perception == "none" else int(perception)
        return module_wrapper(path or None, level, perception_net)

    @property
    def env_id(self) -> str:
        """The env id it trained on."""
        return str(self.config["env"])

    @property
    def policy(self) -> str:
        """The policy name."""
        return str(self.config["policy"])


def _model_file(run_dir: Path) -> Path:
    """The final model, else the newest checkpoint, else the interrupted-run model."""
    if (run_dir / "final_model.zip").is_file():
        return run_dir / "final_model.zip"
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    if checkpoints:
        return checkpoints[0].model
    if (run_dir / "interrupted_model.zip").is_file():
        return run_dir / "interrupted_model.zip"
    raise FileNotFoundError(
        f"No model in {str(run_dir)!r}: no final_model.zip, checkpoints/ or interrupted_model.zip"
        " (did training save one? see train.py --checkpoint-freq)"
    )


def load_run(path: str | os.PathLike) -> Run:
    """Load a run folder (or a model ``.zip`` inside one) for evaluation, without unpickling.

    Args:
        path: A ``train.py`` run folder, or one of its model files (``final_model.zip``,
            ``checkpoints/model_<steps>_steps.zip``) to evaluate that one.

    Raises:
        FileNotFoundError: If the folder, its config, graph spec or model file is missing.
        ValueError: If a file is corrupt, or the weights do not fit the run's config.
    """
    path = Path(path)
    if path.suffix == ".zip":
        model_file = path
        run_dir = next((p for p in (path.parent, path.parent.parent)
                        if (p / "config.json").exists()), path.parent)  # fmt: skip
    else:
        if not path.is_dir():
            raise FileNotFoundError(f"No run folder {str(path)!r}")
        run_dir, model_file = path, None
    config = read_json(run_dir / "config.json", "run config")
    if not isinstance(config, dict) or not {"env", "policy"} <= set(config):
        raise ValueError(f"{str(run_dir / 'config.json')!r} is not a train.py run config")
    spec_path = run_dir / "graph_spec.json"
    try:
        spec = GraphSpec.from_dict(read_json(spec_path, "graph spec"))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{str(spec_path)!r} is not a graph spec: {err}") from None
    model_file = model_file or _model_file(run_dir)
    weights, steps = load_policy_weights(model_file)
    cfg = dict(config.get("policy_cfg") or {})
    net = policies.make(config["policy"], spec, **cfg)
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[1:2]
        raise ValueError(
            f"{str(model_file)!r} does not fit its run's config (policy {config['policy']!r}, "
            f"options {cfg}, env {config['env']}): it was trained by another run. "
            f"{' '.join(first)}"
        ) from None
    net.eval()
    return Run(run_dir, str(config["policy"]), config, spec, model_file, steps, net)


def policy_actor(net: policies.GraphPolicy, space: gym.spaces.Box, deterministic: bool,
                 seed: int = 0) -> Act:  # fmt: skip
    """An agent from a graph policy: its mean action, or a sample from its Gaussian.

    Actions are clipped to the action space per entry, as SB3 does in training and ``predict``
    (so the evaluation sees what training saw; inside the box, clipping changes nothing).
    """
    gen = torch.Generator().manual_seed(seed)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in obs.items()}
        with torch.no_grad():
            mean, log_std, _ = net(tensors)
            if not deterministic:
                noise = torch.randn(mean.shape, generator=gen)
                mean = mean + log_std.exp() * noise
        return np.clip(mean.numpy(), space.low, space.high)

    return act


def predict_actor(agent: Any) -> Act:
    """An agent from anything with SB3's ``predict(obs, deterministic)`` (random, scripted)."""
    return lambda obs: np.asarray(agent.predict(obs, deterministic=True)[0])


@dataclass
class Episode:
    """One finished episode."""

    ret: float
    length: int
    success: float | None
    unstable: bool


class EnvBatch:
    """One env per episode of a condition, stepped in lock step.

    Args:
        env_id: Registered id.
        condition: The condition (episode ``i`` gets :meth:`Condition.episode_kwargs`).
        n: Number of episodes.
        render_mode: ``"rgb_array"`` to record videos.
        copies: Envs per episode: env ``c * n + i`` plays episode ``i`` (several agents side by
            side in one lock step, e.g. for videos).
        wrapper: Applied to every env (e.g. the forecaster a run trained with).
    """

    def __init__(
        self,
        env_id: str,
        condition: Condition,
        n: int,
        render_mode: str | None = None,
        copies: int = 1,
        wrapper: Callable[[gym.Env], gym.Env] | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"need at least one episode, got {n}")
        self.condition = condition
        wrap = wrapper or (lambda env: env)
        self.envs = [
            wrap(gym.make(env_id, render_mode=render_mode, **condition.episode_kwargs(i)))
            for _ in range(copies)
            for i in range(n)
        ]
        self.spec: GraphSpec = self.envs[0].get_wrapper_attr("graph_spec")
        self.action_space = self.envs[0].action_space
        if any(env.get_wrapper_attr("graph_spec") != self.spec for env in self.envs[1:]):
            self.close()
            raise ValueError(
                f"the episodes of condition {condition.name!r} have different observation "
                "layouts (e.g. morphologies padded differently): pass max_nodes"
            )

    def close(self) -> None:
        """Close every env."""
        for env in self.envs:
            env.close()

    def reset(
        self, seeds: Sequence[int], options: Sequence[dict[str, Any] | None] | None = None
    ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, Any]]]:
        """Reset env ``i`` with ``seeds[i]`` and ``options[i]``; observations and infos."""
        opts = options or [None] * len(self.envs)
        out = [env.reset(seed=int(s), options=o) for env, s, o in zip(self.envs, seeds, opts,
                                                                     strict=True)]  # fmt: skip
        return [o for o, _ in out], [i for _, i in out]

    def run(
        self,
        act: Act,
        seeds: Sequence[int],
        options: Sequence[dict[str, Any] | None] | None = None,
        on_step: Callable[[int, dict[str, np.ndarray], list[bool]], None] | None = None,
        on_frames: Callable[[list[np.ndarray]], None] | None = None,
    ) -> list[Episode]:
        """One episode per env, all stepped together until each has ended.

        Args:
            act: The agent.
            seeds: Reset seed of each env.
            options: Reset options of each env (scene rotations for orbits).
            on_step: Called with (step, batched observation, which envs have ended) before
                each action (an ended env's row repeats its last observation).
            on_frames: Called with every env's rendered frame after the reset and after each
                step (an ended env repeats its last frame); needs ``render_mode="rgb_array"``.
                Frames are streamed, not kept: long episodes do not fill the memory.

        Returns:
            The episodes.
        """
        obs, _ = self.reset(seeds, options)
        n = len(self.envs)
        done = [False] * n
        rets, lengths = [0.0] * n, [0] * n
        success: list[float | None] = [None] * n
        unstable = [False] * n
        frames = [env.render() for env in self.envs] if on_frames is not None else []
        if on_frames is not None:
            on_frames(frames)
        step = 0
        while not all(done):
            batch = stack(obs)
            if on_step is not None:
                on_step(step, batch, list(done))
            actions = act(batch)
            for i, env in enumerate(self.envs):
                if done[i]:
                    continue
                obs[i], r, term, trunc, info = env.step(actions[i])
                rets[i] += float(r)
                lengths[i] += 1
                if "is_success" in info:
                    success[i] = float(info["is_success"])
                unstable[i] |= bool(info.get("sim_unstable", False))
                if on_frames is not None:
                    frames[i] = env.render()
                done[i] = bool(term or trunc)
            if on_frames is not None:
                on_frames(frames)
            step += 1
        return [Episode(rets[i], lengths[i], success[i], unstable[i]) for i in range(n)]


def summarize(episodes: Sequence[Episode]) -> dict[str, Any]:
    """:func:`equigym.agents.summarize` of the episodes, plus their ``sim_unstable`` count."""
    from equigym.agents.evaluation import summarize as summarize_dicts

    out = summarize_dicts([
        {"return": e.ret, "length": e.length, **({} if e.success is None else
                                                  {"success": e.success})}
        for e in episodes
    ])  # fmt: skip
    out["sim_unstable"] = int(sum(e.unstable for e in episodes))
    return out


__all__ = [
    "Act",
    "EnvBatch",
    "Episode",
    "Run",
    "load_run",
    "policy_actor",
    "predict_actor",
    "summarize",
]

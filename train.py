"""Train a graph policy with PPO on an equigym env, then evaluate it.

Run ``python -m equigym.train --help`` (or ``equigym-train --help``) for every option. The
defaults train the equivariant HEPi policy on ``equigym/Sliding-v0`` (60k steps) in about six
minutes on a 2-core CPU::

    python -m equigym.train
    python -m equigym.train --env equigym/Walker3D-v0 --policy gnn --morphologies walker:train

Everything goes into the run folder (default ``runs/<env>_<policy>_s<seed>_<timestamp>``):
``config.json`` (options, resolved morphologies, package versions), ``graph_spec.json``,
TensorBoard logs under ``tb/``, checkpoints under ``checkpoints/``, ``final_model.zip`` (plus
``vecnormalize.pkl`` with the reward-normalisation statistics) and ``eval.json`` (deterministic
episodes after training). Load a model with ``stable_baselines3.PPO.load(path)`` after
``import equigym``.
"""

from __future__ import annotations

import os

# MuJoCo reads MUJOCO_GL when it is imported: without a display only EGL renders off-screen.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Literal  # noqa: E402

import tyro  # noqa: E402

PolicyName = Literal["gnn", "mlp", "transformer", "hepi", "empn", "set"]


@dataclass(frozen=True)
class TrainConfig:
    """Train a graph policy with PPO (Stable-Baselines3) on an equigym env and evaluate it."""

    env: str = "equigym/Sliding-v0"
    """Registered equigym env id (e.g. equigym/Insertion-v0, equigym/Hopper3D-v0,
    equigym/Locomotion3D-v0)."""
    policy: PolicyName = "hepi"
    """Graph policy: equivariant hepi (heterogeneous equivariant message passing), empn (its
    backbone on the homogeneous graph) or set (subequivariant transformer); baselines gnn
    (message passing), transformer and mlp (padded), which are not equivariant."""
    total_timesteps: int | None = None
    """Environment steps to train for, summed over all sub-envs (default: preset; locomotion
    200k, rigid manipulation 60k)."""
    seed: int = 0
    """Random seed (torch, numpy, sub-env i is seeded with seed + i)."""
    n_envs: int = 8
    """Parallel sub-envs (with --morphologies, sub-env i runs morphology i mod count)."""
    morphologies: str | None = None
    """Multi-morphology training: a family, family:split or comma list, e.g. walker:train or
    hopper_5_full,hopper_3_shin; all sub-envs are padded to the largest one."""
    vec_env: Literal["dummy", "subproc"] = "dummy"
    """Vector env: dummy (sub-envs stepped in this process) or subproc (one process each)."""
    n_steps: int | None = None
    """PPO rollout length per sub-env (rollout size = n_steps * n_envs) (default: the task's
    preset: locomotion 256, rigid manipulation 100 = one episode)."""
    batch_size: int | None = None
    """PPO minibatch size (default: preset; locomotion 256, rigid manipulation 200)."""
    n_epochs: int | None = None
    """PPO optimisation epochs per rollout (default: preset; locomotion 10, rigid 5 as HEPi)."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO clipping range."""
    ent_coef: float | None = None
    """Entropy bonus coefficient; the entropy counts only real action dimensions (default:
    preset: 0)."""
    vf_coef: float = 0.5
    """Value-loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient-norm clipping."""
    hidden_dim: int | None = None
    """Hidden width of the policy (default: the policy's own: gnn, hepi, empn 64; transformer
    64 (d_model); set 128; mlp 256)."""
    n_layers: int | None = None
    """Message-passing layers (gnn) or hidden layers (mlp) (default: gnn 3, mlp 2)."""
    norm_reward: bool = True
    """Scale rewards by a running estimate of the return's std (VecNormalize with
    norm_obs=False: observations are never normalised per axis)."""
    run_dir: Path | None = None
    """Output folder (default: runs/<env-name>_<policy>_s<seed>_<timestamp>)."""
    checkpoint_freq: int = 50_000
    """Save a checkpoint every this many environment steps (0: none). Checkpoints are written
    atomically, so a crash or kill loses at most one interval (see --resume)."""
    resume: Path | None = None
    """Continue the run in this folder from its newest readable checkpoint, with the options in
    its config.json (a --total-timesteps given here replaces the saved budget)."""
    eval_freq: int = 25_000
    """Every this many environment steps, evaluate on separate sub-envs (deterministic, the same
    seeds each time) and log eval/mean_return, eval/success_rate and eval/equivariance_error to
    TensorBoard (0: off)."""
    eval_envs: int = 4
    """Sub-envs (one episode each) of the periodic evaluation (with --morphologies: one per
    morphology)."""
    eval_episodes: int = 5
    """Deterministic evaluation episodes after training, per morphology (0: skip)."""
    progress_bar: bool = True
    """Show a progress bar during training."""
    device: str = "cpu"
    """Torch device (cpu, cuda, auto)."""
    threads: int = 1
    """Torch CPU threads (1 is fastest for these small networks on a few cores)."""
    forecast: Path | None = None
    """Forecaster folder (python -m equigym.modules.forecast.train): its predicted
    displacements of the forecast node type are added as vector features (forecast_<k>)."""
    perception: int | None = None
    """Perception level replacing the tracked node positions (and their offsets and
    velocities): 0 ground truth + noise/dropout/latency, 1 depth camera + geometric fit, 2 level 1
    refined by a keypoint network (--perception-net); default: the simulator's positions."""
    perception_net: Path | None = None
    """Level 2's keypoint network folder (python -m equigym.modules.perception.train)."""
    perception_noise: float = 0.005
    """Level 0: std of the position noise, m."""
    perception_dropout: float = 0.05
    """Level 0: probability that a node is not updated in a step (it keeps its last value)."""
    perception_latency: int = 1
    """Level 0: delay, control steps."""
    compile: bool = False
    """torch.compile the policy: PPO steps/s on a CPU x1.4-1.5 for hepi, x1.15 for set
    (benchmarks/results/policy_speed.json), after a one-off compilation of about a minute per
    batch size; worth it for runs of 100k+ steps."""
    verbose: int = 0
    """SB3 verbosity: 0 quiet, 1 training tables."""


PRESETS: dict[str, dict[str, Any]] = {
    "locomotion": {"n_steps": 256, "batch_size": 256, "n_epochs": 10, "ent_coef": 0.0,
                   "total_timesteps": 200_000},
    "rigid": {"n_steps": 100, "batch_size": 200, "n_epochs": 5, "ent_coef": 0.0,
              "total_timesteps": 60_000},
    "deformable": {"n_steps": 200, "batch_size": 200, "n_epochs": 5, "ent_coef": 0.0,
                   "total_timesteps": 60_000},
}
"""PPO settings per task family, filling the options left unset.

Adapted to CPU budgets from the references: 3D-SGRL for locomotion; for the rigid tasks HEPi's
5 epochs with one 100-step episode per sub-env per rollout (HEPi uses 100-1000 parallel envs on a
GPU and 10-30M frames; equigym's default is 8 sub-envs and 60k steps). No entropy bonus: HEPi's
(5e-4 to 5e-3) belongs to its trust-region updates; at these budgets PPO learns without one
(benchmarks/results/learning_*). Deformable tasks (rope, cloth): the rigid settings with 200-step
rollouts (one rope episode; two cloth episodes), HEPi's minibatch of 200."""


def apply_preset(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with every unset (``None``) PPO option taken from its task's :data:`PRESETS`."""
    from equigym.envs.registration import DEFORMABLE_IDS, MANIPULATION_IDS

    family = (
        "rigid" if cfg.env in MANIPULATION_IDS
        else "deformable" if cfg.env in DEFORMABLE_IDS
        else "locomotion"
    )
    unset = {k: v for k, v in PRESETS[family].items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **unset)


def default_run_dir(cfg: TrainConfig) -> Path:
    """``runs/<env-name>_<policy>_s<seed>_<timestamp>`` (env name without its namespace)."""
    name = cfg.env.rsplit("/", 1)[-1]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}_{cfg.policy}_s{cfg.seed}_{stamp}"


def versions() -> dict[str, str]:
    """Versions of the packages a run depends on."""
    import gymnasium
    import mujoco
    import numpy
    import stable_baselines3
    import torch

    import equigym

    return {
        "equigym": equigym.__version__,
        "mujoco": mujoco.__version__,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def policy_cfg(cfg: TrainConfig) -> dict[str, Any]:
    """Graph-policy options from the config (only those set)."""
    import inspect

    from equigym import policies

    out: dict[str, Any] = {}
    if cfg.hidden_dim is not None:
        # The transformer calls its width d_model, the others hidden_dim.
        params = inspect.signature(policies.POLICIES[cfg.policy].__init__).parameters
        out["hidden_dim" if "hidden_dim" in params else "d_model"] = cfg.hidden_dim
    if cfg.n_layers is not None:
        out["n_layers"] = cfg.n_layers
    return out


def perception_settings(cfg: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """Level 0's sensor model from a config (or a run's ``config.json`` content)."""
    get = cfg.get if isinstance(cfg, dict) else functools.partial(getattr, cfg)
    if get("perception") != 0:
        return {}
    return {"noise": get("perception_noise"), "dropout": get("perception_dropout"),
            "latency": get("perception_latency")}


def env_wrapper(cfg: TrainConfig) -> Any:
    """The per-sub-env wrapper the config asks for (perception, forecaster), or ``None``."""
    from equigym.modules import module_wrapper

    return module_wrapper(cfg.forecast, cfg.perception, cfg.perception_net,
                          perception_settings(cfg))


def _check(cfg: TrainConfig) -> list[str] | None:
    """Validate the config before anything is built; return the resolved morphologies.

    Raises:
        ValueError: With a message for the user.
    """
    from equigym.agents import check_env_id, check_morphologies

    check_env_id(cfg.env)
    for name in ("total_timesteps", "n_envs", "n_steps", "batch_size", "n_epochs", "threads",
                 "eval_envs"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    for name in ("checkpoint_freq", "eval_episodes", "eval_freq"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.hidden_dim is not None and cfg.hidden_dim < 1:
        raise ValueError(f"--hidden-dim must be >= 1, got {cfg.hidden_dim}")
    if cfg.n_layers is not None and cfg.n_layers < 1:
        raise ValueError(f"--n-layers must be >= 1, got {cfg.n_layers}")
    if cfg.resume is None and cfg.run_dir is not None and (cfg.run_dir / "config.json").exists():
        raise ValueError(
            f"{cfg.run_dir} already holds a run (config.json); choose another --run-dir, or "
            f"continue it with --resume {cfg.run_dir}"
        )
    if cfg.forecast is not None:
        from equigym.modules.forecast.model import load_forecaster

        load_forecaster(cfg.forecast)  # a missing or broken file fails here, not in a sub-env
    _check_perception(cfg)
    if cfg.morphologies is None:
        return None
    from equigym.envs.locomotion import resolve_morphologies

    morphologies = resolve_morphologies(cfg.morphologies)
    check_morphologies(cfg.env, morphologies)
    return morphologies


def _check_perception(cfg: TrainConfig) -> None:
    """Refuse perception options that would be ignored, and levels the env lacks.

    Raises:
        ValueError: With a message for the user.
        FileNotFoundError: For a missing keypoint network.
    """
    if cfg.perception_net is not None and cfg.perception != 2:
        raise ValueError("--perception-net is used only by --perception 2")
    sensor = ("perception_noise", "perception_dropout", "perception_latency")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    changed = [n for n in sensor if getattr(cfg, n) != defaults[n]]
    if changed and cfg.perception != 0:
        flags = ", ".join("--" + n.replace("_", "-") for n in changed)
        raise ValueError(f"{flags} set level 0's sensor model: add --perception 0")
    if cfg.perception is None:
        return
    env_wrapper(cfg)  # checks the level, its settings and the network file
    if cfg.perception in (1, 2):  # here, not in a sub-process env
        import gymnasium as gym

        from equigym.modules.perception.geometric import make_fitter

        env = gym.make(cfg.env)
        try:
            make_fitter(env)
        finally:
            env.close()


def resume_config(cfg: TrainConfig) -> TrainConfig:
    """The saved options of the run ``cfg.resume`` (a non-default ``total_timesteps`` replaces its).

    Raises:
        FileNotFoundError: If the folder or its config.json is missing.
        ValueError: If config.json is not a readable run configuration.
    """
    assert cfg.resume is not None
    path = Path(cfg.resume) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"Cannot resume: {str(path)!r} does not exist (pass the run folder that train.py "
            "created, the one holding config.json and checkpoints/)."
        )
    try:
        saved = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        options = {k: v for k, v in saved.items() if k in fields}
        total = options["total_timesteps"]
        total = None if total is None else int(total)  # None: the preset's
        if cfg.total_timesteps is not None:  # given: it replaces the budget
            total = cfg.total_timesteps
        options.update(run_dir=Path(cfg.resume), resume=Path(cfg.resume), total_timesteps=total)
        return TrainConfig(**options)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"Cannot resume: {str(path)!r} is not a readable run config ({err})."
        ) from err


def _write_run_files(
    cfg: TrainConfig,
    run_dir: Path,
    model: Any,
    spec: Any,
    morphologies: list[str] | None,
    pcfg: dict[str, Any],
    command: Sequence[str] | None,
) -> None:
    """Write ``config.json``, ``graph_spec.json`` and copies of the forecaster and keypoint net.

    ``config.json`` holds the options, versions and command; ``forecaster.pt`` and
    ``keypoints.pt`` the weights the run trained with (what evaluation applies).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.forecast is not None:
        from equigym.modules.forecast.model import forecaster_file

        shutil.copyfile(forecaster_file(cfg.forecast), run_dir / "forecaster.pt")
    if cfg.perception_net is not None:
        from equigym.modules.perception.keypoints import keypoint_file

        shutil.copyfile(keypoint_file(cfg.perception_net), run_dir / "keypoints.pt")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    config.update(
        run_dir=str(run_dir),
        resolved_morphologies=morphologies,
        policy_cfg=pcfg,
        action_dim=spec.action_dim,
        n_parameters=sum(p.numel() for p in model.policy.parameters()),
        command=list(sys.argv if command is None else command),
        started=datetime.now().isoformat(timespec="seconds"),
        platform=platform.platform(),
        versions=versions(),
    )
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (run_dir / "graph_spec.json").write_text(spec.to_json(indent=2) + "\n")


def train(cfg: TrainConfig, command: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, save and evaluate as ``cfg`` says.

    Args:
        cfg: The run's configuration.
        command: The command line to record in ``config.json`` (default ``sys.argv``).

    Returns:
        Summary: ``run_dir``, ``train_time_s``, ``steps_per_s`` and ``eval`` (the content of
        ``eval.json``, or ``None`` without evaluation).

    Raises:
        ValueError: For invalid options (unknown env id, policy option or morphology).
    """
    if cfg.resume is not None:
        cfg = resume_config(cfg)
    cfg = apply_preset(cfg)
    if cfg.forecast is not None:  # recorded absolute: the run must find it from anywhere
        cfg = dataclasses.replace(cfg, forecast=Path(cfg.forecast).resolve())
    if cfg.perception_net is not None:
        cfg = dataclasses.replace(cfg, perception_net=Path(cfg.perception_net).resolve())
    morphologies = _check(cfg)

    import torch
    from stable_baselines3.common.vec_env import VecNormalize

    from equigym.agents import (
        RandomPolicy,
        evaluate,
        graph_spec_of,
        make_ppo,
        make_vec_env,
        summarize,
    )
    from equigym.agents.callbacks import PeriodicEvalCallback
    from equigym.agents.checkpoint import AtomicCheckpointCallback, load_latest
    from equigym.envs.registration import DEFORMABLE_IDS, MANIPULATION_IDS

    torch.set_num_threads(cfg.threads)
    pcfg = policy_cfg(cfg)
    wrapper = env_wrapper(cfg)
    venv = make_vec_env(cfg.env, cfg.n_envs, cfg.seed, morphologies, cfg.vec_env, wrapper=wrapper)
    periodic = None
    try:
        spec = graph_spec_of(venv)
        run_dir = cfg.run_dir if cfg.run_dir is not None else default_run_dir(cfg)
        if cfg.resume is not None:
            model, train_env, ckpt = load_latest(run_dir / "checkpoints", venv, cfg.device)
            model.tensorboard_log = str(run_dir / "tb")  # the folder may have moved
            print(f"Resuming {run_dir} from {ckpt.model.name} ({ckpt.timesteps} steps)")
        else:
            train_env = (
                VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=cfg.gamma)
                if cfg.norm_reward
                else venv
            )
            model = make_ppo(
                train_env,
                policy=cfg.policy,
                policy_cfg=pcfg,
                spec=spec,
                n_steps=cfg.n_steps,
                batch_size=cfg.batch_size,
                n_epochs=cfg.n_epochs,
                learning_rate=cfg.learning_rate,
                gamma=cfg.gamma,
                gae_lambda=cfg.gae_lambda,
                clip_range=cfg.clip_range,
                ent_coef=cfg.ent_coef,
                vf_coef=cfg.vf_coef,
                max_grad_norm=cfg.max_grad_norm,
                tensorboard_log=str(run_dir / "tb"),
                seed=cfg.seed,
                device=cfg.device,
                verbose=cfg.verbose,
                compile=cfg.compile,
            )
            _write_run_files(cfg, run_dir, model, spec, morphologies, pcfg, command)

        callbacks: list[Any] = []
        if cfg.checkpoint_freq > 0:
            callbacks.append(AtomicCheckpointCallback(cfg.checkpoint_freq, run_dir / "checkpoints"))
        if cfg.eval_freq > 0:
            n_eval = len(morphologies) if morphologies else cfg.eval_envs
            eval_venv = make_vec_env(cfg.env, n_eval, cfg.seed + 50_000, morphologies,
                                     wrapper=wrapper)  # fmt: skip
            periodic = PeriodicEvalCallback(
                eval_venv, cfg.eval_freq, spec, seed=cfg.seed + 50_000,
                history_path=run_dir / "eval_history.json",
            )  # fmt: skip
            callbacks.append(periodic)
        start = time.perf_counter()
        # On resume, learn() continues the step count and the same TensorBoard run.
        start_steps = model.num_timesteps if cfg.resume else 0
        remaining = cfg.total_timesteps - start_steps
        try:
            if remaining > 0:
                model.learn(
                    remaining,
                    callback=callbacks,
                    tb_log_name="ppo",
                    reset_num_timesteps=cfg.resume is None,
                    progress_bar=cfg.progress_bar,
                )
        except KeyboardInterrupt:
            model.save(run_dir / "interrupted_model.zip")
            print(f"Interrupted; model saved to {run_dir / 'interrupted_model.zip'}")
            raise
        train_time = time.perf_counter() - start
        model.save(run_dir / "final_model.zip")
        if isinstance(train_env, VecNormalize):
            train_env.save(str(run_dir / "vecnormalize.pkl"))
    finally:
        venv.close()
        if periodic is not None:
            periodic.eval_env.close()

    steps_per_s = (model.num_timesteps - start_steps) / max(train_time, 1e-9)
    result = None
    if cfg.eval_episodes > 0:
        start = time.perf_counter()
        # One single-episode sub-env per (morphology, episode), stepped as one batch; rewards
        # are the env's own (no normalisation), seeds differ from training.
        names = morphologies or [None]
        eval_env = make_vec_env(
            cfg.env, len(names) * cfg.eval_episodes, cfg.seed + 100_000, morphologies,
            wrapper=wrapper,
        )
        try:
            per_env = evaluate(model, eval_env, episodes_per_env=1, deterministic=True)
            # The same episodes (same env seeds) under uniformly random actions, for reference.
            eval_env.seed(cfg.seed + 100_000)
            random_eps = evaluate(
                RandomPolicy(eval_env.action_space, cfg.seed), eval_env, episodes_per_env=1
            )
            scripted_eps = None
            if cfg.env in MANIPULATION_IDS or cfg.env in DEFORMABLE_IDS:
                # Manipulation tasks ship a scripted controller: the bar a learned policy should
                # clear.
                from equigym.envs.manipulation.scripted_deformable import scripted_policy

                eval_env.seed(cfg.seed + 100_000)
                scripted_eps = evaluate(scripted_policy(cfg.env), eval_env, episodes_per_env=1)
        finally:
            eval_env.close()
        episodes = [ep for eps in per_env for ep in eps]
        result = summarize(episodes)
        if morphologies:
            result["per_morphology"] = {
                m: summarize([per_env[i][0] for i in range(len(per_env)) if i % len(names) == j])
                for j, m in enumerate(names)
            }
        if scripted_eps is not None:
            result["scripted_policy"] = summarize([ep for eps in scripted_eps for ep in eps])
        result.update(
            random_policy=summarize([ep for eps in random_eps for ep in eps]),
            deterministic=True,
            returns=[ep["return"] for ep in episodes],
            timesteps=model.num_timesteps,
            train_time_s=round(train_time, 2),
            train_steps_per_s=round(steps_per_s, 1),
            eval_time_s=round(time.perf_counter() - start, 2),
        )
        (run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")

    print(f"Run folder:  {run_dir}")
    print(
        f"Training:    {model.num_timesteps} steps in {train_time:.0f} s "
        f"({steps_per_s:.0f} steps/s)"
    )
    if result is not None:
        print(
            f"Evaluation:  return {result['mean_return']:.1f} ± {result['std_return']:.1f}, "
            f"length {result['mean_length']:.0f} over {result['episodes']} deterministic episodes"
        )
        rnd = result["random_policy"]
        print(
            f"Random:      return {rnd['mean_return']:.1f} ± {rnd['std_return']:.1f}, "
            f"length {rnd['mean_length']:.0f} (uniform actions, same episodes)"
        )
        if "success_rate" in result:
            line = f"Success:     {result['success_rate']:.0%} (random {rnd['success_rate']:.0%}"
            if "scripted_policy" in result:
                scr = result["scripted_policy"]
                line += (f", scripted controller {scr['success_rate']:.0%}, return "
                         f"{scr['mean_return']:.1f}")
            print(line + ")")
    return {
        "run_dir": run_dir,
        "train_time_s": train_time,
        "steps_per_s": steps_per_s,
        "eval": result,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``equigym-train``, ``python -m equigym.train``)."""
    cfg = tyro.cli(TrainConfig, args=argv)
    try:
        train(cfg, command=None if argv is None else ["equigym-train", *argv])
    except (ValueError, FileNotFoundError) as err:
        # A message, not a traceback, for what the user typed wrong (train() checks every
        # option before it builds anything) or a run folder that cannot be resumed.
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()

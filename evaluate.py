"""Evaluate trained runs zero-shot: training vs held-out conditions, orbits, videos, a report.

Run ``python -m equigym.evaluate --help`` (or ``equigym-evaluate --help``) for every option::

    python -m equigym.evaluate runs/Sliding-v0_hepi_s0_20261126-101500
    python -m equigym.evaluate runs/A runs/B --orbit 12 --video 2
    python -m equigym.evaluate runs/W --conditions train held_out morphology:walker_3_full

For each run (a ``train.py`` folder, or one of its model files to evaluate a checkpoint) it plays
``--episodes`` seeded episodes in every condition (:mod:`equigym.evaluation.conditions`: the
training conditions and the held-out morphologies, shapes, holes or target curves), with
deterministic and stochastic actions, next to a random policy and, on manipulation tasks, the
scripted controller on the same episodes. The output folder gets ``results.json``,
``results.csv``, ``results.md`` (mean ± std return, success rate, held-out ÷ train ratio),
``conditions.png``, ``learning_curves.png`` (from the runs' TensorBoard logs), with ``--orbit K``
``orbit.png`` (:mod:`equigym.evaluation.orbit`) and with ``--video N`` MP4s under ``videos/``.

Model files are read without unpickling (:func:`equigym.agents.checkpoint.load_policy_weights`),
so evaluating a run folder from elsewhere cannot execute code hidden in it.
"""

from __future__ import annotations

import os

# MuJoCo reads MUJOCO_GL when it is imported: without a display only EGL renders off-screen.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Literal  # noqa: E402

import tyro  # noqa: E402

Mode = Literal["deterministic", "stochastic"]


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate train.py runs on their training and held-out conditions, side by side."""

    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run folders of train.py (or model .zip files inside them), all on one env."""
    episodes: int = 10
    """Episodes per condition (seeds seed, seed+1, ...; the same for every agent)."""
    conditions: tuple[str, ...] = ()
    """Conditions to run (default: train and held_out); also morphology:<name>, xml:<path>,
    shape:<name>, target:<name>, hole:<index>."""
    xml: tuple[Path, ...] = ()
    """Locomotion: extra robot MJCF files, each a held-out condition xml:<file name>."""
    modes: tuple[Mode, ...] = ("deterministic", "stochastic")
    """Action modes: the policy's mean, or samples from its Gaussian."""
    seed: int = 1_000_000
    """First episode seed (far from train.py's training and evaluation seeds)."""
    baselines: bool = True
    """Add a random policy and (manipulation) the scripted controller on the same episodes."""
    orbit: int = 0
    """Orbit analysis with this many rotations about gravity (0: off), on the train
    condition's first --orbit-scenes scenes."""
    orbit_scenes: int = 3
    """Initial scenes of the orbit analysis."""
    orbit_tilts: tuple[float, ...] = ()
    """Tilts (degrees, about a horizontal axis) added to the orbit, for tasks whose symmetry
    includes them (InsertionTwoAgents, ClothHanging)."""
    video: int = 0
    """Record this many episodes per condition as MP4 (all runs side by side; 0: none)."""
    perception: Literal["trained", "none", "0", "1", "2"] = "trained"
    """Perception to evaluate under: the runs' own (trained), the simulator's positions (none)
    or a level (0 with its default sensor model, 1, 2 with --perception-net): sensor
    robustness of a policy trained without perception, or the reverse."""
    perception_net: Path | None = None
    """Keypoint network folder for --perception 2."""
    out: Path | None = None
    """Output folder (default: RUN/evaluation for one run, evaluations/<env>_<time> else)."""
    threads: int = 1
    """Torch CPU threads."""


def _check(cfg: EvalConfig) -> None:
    if not cfg.runs:
        raise ValueError("name at least one run folder: python -m equigym.evaluate RUN_DIR")
    for name in ("episodes", "orbit_scenes", "threads"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("orbit", "video"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"--{name} must be >= 0")
    if cfg.orbit == 1:
        raise ValueError("--orbit needs at least 2 angles (or 0 for none)")
    if not cfg.modes:
        raise ValueError("--modes needs deterministic, stochastic or both")
    if cfg.perception_net is not None and cfg.perception != "2":
        raise ValueError("--perception-net is used only with --perception 2")


def _labels(runs: Sequence[Any]) -> None:
    """Name runs by policy; where names repeat, add the folder, then the model file.

    Raises:
        ValueError: If two entries are the same model of the same run.
    """
    namings = (
        lambda r: r.policy,
        lambda r: f"{r.policy}:{r.path.name}",
        lambda r: f"{r.policy}:{r.path.name}/{r.model_file.stem}",
    )
    for name in namings:
        labels = [name(r) for r in runs]
        if len(set(labels)) == len(labels):
            for r, label in zip(runs, labels, strict=True):
                r.label = label
            return
    raise ValueError("the same model is named twice: evaluate each run (or checkpoint) once")


def _row(agent: str, kind: str, mode: str, cond: Any, stats: dict, run: Any = None) -> dict:
    return {
        "agent": agent, "kind": kind, "mode": mode, "condition": cond.name, "split": cond.split,
        **stats, "run": None if run is None else str(run.path),
    }  # fmt: skip


def evaluate_runs(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate as ``cfg`` says and write the report; the results (also in ``results.json``).

    Raises:
        FileNotFoundError: For a missing run folder, config, graph spec or model file.
        ValueError: For a corrupt file, runs on different envs, an unknown condition or an
            observation layout that does not match the env.
    """
    _check(cfg)
    import torch

    from equigym.agents import RandomPolicy
    from equigym.envs.registration import DEFORMABLE_IDS, MANIPULATION_IDS
    from equigym.evaluation import orbit as orbit_mod
    from equigym.evaluation import report
    from equigym.evaluation.conditions import family_of, run_conditions, select_conditions
    from equigym.evaluation.rollout import EnvBatch, load_run, policy_actor, predict_actor
    from equigym.evaluation.rollout import summarize as summarize_episodes

    torch.set_num_threads(cfg.threads)
    runs = [load_run(p) for p in cfg.runs]
    _labels(runs)
    envs = sorted({r.env_id for r in runs})
    if len(envs) > 1:
        listing = "; ".join(f"{r.path} ({r.env_id})" for r in runs)
        raise ValueError(f"runs are from different envs ({listing}): evaluate them separately")
    env_id, first = envs[0], runs[0]
    modules = ("forecast",) + (("perception", "perception_net", "perception_noise",
                                 "perception_dropout", "perception_latency")
                                if cfg.perception == "trained" else ())  # fmt: skip
    if len({tuple(str(r.config.get(k)) for k in modules) for r in runs}) > 1:
        raise ValueError("runs trained with different modules (--forecast, --perception...): "
                         "evaluate them separately (or pick one --perception for all)")
    # The perception (theirs or --perception) and forecaster of the runs, if any.
    wrapper = first.module_wrapper(cfg.perception, cfg.perception_net)
    trained = {tuple(r.config.get("resolved_morphologies") or ()) for r in runs}
    if len(trained) > 1:
        raise ValueError(
            "runs trained on different morphologies have different train and held-out "
            f"conditions ({sorted(trained)}): evaluate them separately"
        )
    elements = orbit_mod.orbit_elements(cfg.orbit, cfg.orbit_tilts, env_id) if cfg.orbit else []
    builtin = run_conditions(
        env_id,
        first.config.get("resolved_morphologies"),
        max_nodes=(max(n.count for n in first.spec.node_types)
                   if family_of(env_id) == "locomotion" else None),  # fmt: skip
        xml=cfg.xml,
    )
    conditions = select_conditions(env_id, builtin, cfg.conditions)
    _check_layouts(env_id, conditions, runs, cfg.episodes, wrapper)
    seeds = [cfg.seed + i for i in range(cfg.episodes)]
    out = _out_dir(cfg, runs, env_id)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    rows: list[dict[str, Any]] = []
    for cond in conditions.values():
        batch = EnvBatch(env_id, cond, cfg.episodes, wrapper=wrapper)
        try:
            for run in runs:
                for mode in cfg.modes:
                    act = policy_actor(run.net, batch.action_space, mode == "deterministic",
                                       seed=cfg.seed)  # fmt: skip
                    stats = summarize_episodes(batch.run(act, seeds))
                    rows.append(_row(run.label, "policy", mode, cond, stats, run))
            if cfg.baselines:
                rnd = predict_actor(RandomPolicy(batch.action_space, cfg.seed))
                rows.append(_row("random", "random", "-", cond,
                                 summarize_episodes(batch.run(rnd, seeds))))  # fmt: skip
                if env_id in MANIPULATION_IDS or env_id in DEFORMABLE_IDS:
                    from equigym.envs.manipulation.scripted_deformable import scripted_policy

                    scr = predict_actor(scripted_policy(env_id))
                    rows.append(_row("scripted", "scripted", "-", cond,
                                     summarize_episodes(batch.run(scr, seeds))))  # fmt: skip
        finally:
            batch.close()
        print(f"evaluated {cond.name} ({cond.description}) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    report.add_ratios(rows)

    orbits: dict[str, Any] = {}
    if cfg.orbit:
        base = conditions.get("train") or builtin["train"]
        for run in runs:
            orbits[run.label] = orbit_mod.run_orbit(run, base, elements,
                                                    seeds[: cfg.orbit_scenes], wrapper=wrapper)
        print(f"orbit analysis done in {time.perf_counter() - start:.0f} s", flush=True)

    results = {
        "env": env_id,
        "date": datetime.now().isoformat(timespec="seconds"),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
                     if k != "runs"},  # fmt: skip
        "runs": [{"label": r.label, "path": str(r.path), "policy": r.policy,
                  "model_file": str(r.model_file), "timesteps": r.timesteps} for r in runs],
        "conditions": {c.name: {"split": c.split, "description": c.description,
                                "env_kwargs": c.env_kwargs, "morphologies": list(c.morphologies)}
                       for c in conditions.values()},  # fmt: skip
        "rows": rows,
        "orbit": orbits,
        "videos": [],
        "eval_time_s": round(time.perf_counter() - start, 1),
    }
    report.write_csv(rows, out / "results.csv")
    name = env_id.rsplit("/", 1)[-1]
    report.plot_conditions(rows, out / "conditions.png", f"{name}: train vs held-out")
    has_curves = report.plot_learning_curves([(r.label, r.path) for r in runs],
                                             out / "learning_curves.png", name)  # fmt: skip
    if orbits:
        report.plot_orbits(orbits, out / "orbit.png", f"{name}: orbit about gravity")

    def write() -> None:
        (out / "results.json").write_text(json.dumps(results, indent=2, default=_jsonable) + "\n")
        (out / "results.md").write_text(_markdown(results, has_curves))

    write()
    if cfg.video:  # last, so the numbers are on disk even if rendering or encoding fails
        videos = _videos(cfg, runs, env_id, conditions, seeds, out)
        results["videos"] = [str(v) for v in videos]
        write()
    results["out"] = str(out)
    return results


def _check_layouts(env_id: str, conditions: dict, runs: Sequence[Any], episodes: int,
                   wrapper: Any) -> None:  # fmt: skip
    """Before any episode: every condition's envs have the layout every run trained on."""
    import warnings

    import gymnasium as gym

    for cond in conditions.values():
        n_morph = len(cond.morphologies)
        if n_morph and episodes % n_morph:
            warnings.warn(
                f"{episodes} episodes over the {n_morph} morphologies of {cond.name!r}: episode "
                f"i runs morphology i mod {n_morph}, so they are not weighted equally (use a "
                f"multiple of {n_morph})",
                stacklevel=3,
            )
        for i in range(min(episodes, max(n_morph, 1))):
            env = gym.make(env_id, **cond.episode_kwargs(i))
            env = wrapper(env) if wrapper is not None else env
            spec = env.get_wrapper_attr("graph_spec")
            env.close()
            for run in runs:
                if spec != run.spec:
                    raise ValueError(
                        f"condition {cond.name!r} gives {env_id} an observation layout that "
                        f"differs from the one {run.path} trained on (other morphologies or "
                        "padding, or an env changed since): evaluate it separately"
                    )


def _jsonable(x: Any) -> Any:
    return x.tolist() if hasattr(x, "tolist") else str(x)


def _out_dir(cfg: EvalConfig, runs: Sequence[Any], env_id: str) -> Path:
    if cfg.out is not None:
        return cfg.out
    if len(runs) == 1:
        return runs[0].path / "evaluation"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("evaluations") / f"{env_id.rsplit('/', 1)[-1]}_{stamp}"


def _videos(cfg: EvalConfig, runs: Sequence[Any], env_id: str, conditions: dict, seeds: list,
            out: Path) -> list[Path]:  # fmt: skip
    """MP4s of the first ``cfg.video`` episodes per condition, every run side by side."""
    import numpy as np

    from equigym.evaluation.rollout import EnvBatch, policy_actor
    from equigym.evaluation.video import Mp4Writer, side_by_side

    (out / "videos").mkdir(exist_ok=True)
    n, written = min(cfg.video, cfg.episodes), []
    for cond in conditions.values():
        # Env r*n + i plays episode i for run r: all runs in one lock step, one frame each.
        batch = EnvBatch(env_id, cond, n, render_mode="rgb_array", copies=len(runs),
                         wrapper=runs[0].module_wrapper(cfg.perception, cfg.perception_net))
        try:
            actors = [policy_actor(run.net, batch.action_space, True) for run in runs]

            def act(obs: dict, actors: list = actors) -> np.ndarray:
                return np.concatenate([a({k: v[r * n:(r + 1) * n] for k, v in obs.items()})
                                       for r, a in enumerate(actors)])  # fmt: skip

            fps = 1.0 / float(batch.envs[0].unwrapped.dt)
            slug = cond.name.replace(":", "_").replace("/", "_")
            writers = [Mp4Writer(out / "videos" / f"{slug}_ep{i}.mp4", fps) for i in range(n)]

            def on_frames(frames: list, writers: list = writers) -> None:
                for i, w in enumerate(writers):
                    w.append(side_by_side([(run.label, frames[r * n + i])
                                           for r, run in enumerate(runs)]))  # fmt: skip

            try:
                batch.run(act, [s for _ in runs for s in seeds[:n]], on_frames=on_frames)
            finally:
                for w in writers:
                    w.close()
            written += [w.path for w in writers]
        finally:
            batch.close()
    return written


def _markdown(results: dict[str, Any], has_curves: bool) -> str:
    from equigym.evaluation import report

    lines = [f"# Evaluation of {results['env']}", ""]
    for r in results["runs"]:
        lines.append(f"- **{r['label']}**: `{r['path']}` ({r['policy']}, model "
                     f"`{Path(r['model_file']).name}`, {r['timesteps']} steps)")  # fmt: skip
    lines += ["", "Conditions:", ""]
    for name, c in results["conditions"].items():
        lines.append(f"- `{name}` ({c['split'].replace('_', '-')}): {c['description']}")
    s = results["settings"]
    kinds = {r["kind"] for r in results["rows"]}
    text = f"{s['episodes']} episodes per condition (seeds {s['seed']}+)"
    if kinds - {"policy"}:
        text += "; the " + " and ".join(k for k in ("random", "scripted") if k in kinds) + \
            " agents play the same episodes"
    text += (". Held-out ÷ train divides by the same agent's train value (only where both "
             "returns have one sign); with negative returns (costs) a ratio above 1 is worse.")
    if any(r.get("score") is not None for r in results["rows"]):
        text += (" Score: the return normalised per condition between the random policy (0) "
                 "and the scripted controller (1); its ratio below 1 is worse.")
    lines += ["", text, "", report.markdown_table(results["rows"]), "",
              "![conditions](conditions.png)"]  # fmt: skip
    if has_curves:
        lines += ["", "![learning curves](learning_curves.png)"]
    if results["orbit"]:
        lines += ["", "## Orbit about gravity", "",
                  "| agent | scenes | max policy error | max rotated-scene error | "
                  "return spread along the orbit | return std across scenes |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for label, o in results["orbit"].items():
            lines.append(f"| {label} | {o['scenes']} | {o['max_policy_error']:.2e} | "
                         f"{o['max_scene_error']:.2e} | {o['return_spread']:.3f} | "
                         f"{o['return_std_across_scenes']:.3f} |")  # fmt: skip
        notes = next(iter(results["orbit"].values()))["physics_notes"]
        lines += ["", f"Symmetry breakers in the simulation: {notes}", "",
                  "![orbit](orbit.png)"]  # fmt: skip
    if results["videos"]:
        lines += ["", "Videos: " + ", ".join(f"`{Path(v).name}`" for v in results["videos"])]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``equigym-evaluate``, ``python -m equigym.evaluate``)."""
    cfg = tyro.cli(EvalConfig, args=argv)
    try:
        results = evaluate_runs(cfg)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    from equigym.evaluation.report import markdown_table

    print(markdown_table(results["rows"]))
    print(f"Report: {Path(results['out']) / 'results.md'}")


if __name__ == "__main__":
    main()

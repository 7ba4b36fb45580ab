"""Learning curves of several policies on one env at an equal, small budget (several seeds).

Each (policy, seed) pair is one ``train.py`` run with periodic deterministic evaluation on fixed
seeds; the script collects the evaluation history of every run, writes the per-policy mean and
spread to JSON and, when matplotlib is installed (``pip install matplotlib``), a PNG of the
curves. It is evidence, not a test: it is not run in CI.

Usage::

    python benchmarks/learning_curves.py --env equigym/Sliding-v0 \
        --policies hepi transformer mlp --seeds 0 1 --total-timesteps 40000 \
        --out benchmarks/results/learning_sliding

On a many-core machine ``--jobs N`` runs N (policy, seed) pairs at once, one process each
(``--threads`` torch threads per process); ``--device cuda`` puts the equivariant policies on a
GPU (the baselines stay on the CPU, where these small networks are faster). ``--collect`` builds
the report from the run folders already in ``--out`` (each run writes its evaluation curve after
every evaluation, so runs stopped by a time limit still count, up to where they got).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from equigym.policies import EQUIVARIANT  # noqa: E402
from equigym.train import TrainConfig, train  # noqa: E402

FINAL_KEYS = ("mean_return", "std_return", "success_rate", "random_policy", "scripted_policy")
"""Keys of a run's ``eval.json`` kept in the report."""


def run(args: argparse.Namespace, policy: str, seed: int, out: Path) -> dict:
    on_gpu = args.device != "cpu" and policy in EQUIVARIANT
    cfg = TrainConfig(
        env=args.env,
        policy=policy,  # type: ignore[arg-type]
        total_timesteps=args.total_timesteps,
        seed=seed,
        n_envs=args.n_envs,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        ent_coef=args.ent_coef,
        eval_freq=args.eval_freq,
        eval_envs=args.eval_envs,
        eval_episodes=args.eval_episodes,
        checkpoint_freq=0,
        progress_bar=False,
        morphologies=args.morphologies,
        run_dir=out / "runs" / f"{policy}_s{seed}",
        device=args.device if on_gpu else "cpu",
        threads=args.threads,
        compile=args.compile and policy in EQUIVARIANT,
    )
    start = time.perf_counter()
    summary = train(cfg, command=["benchmarks/learning_curves.py"])
    history = json.loads((Path(summary["run_dir"]) / "eval_history.json").read_text())
    final = summary["eval"] or {}
    return {
        "policy": policy,
        "seed": seed,
        "device": cfg.device,
        "wall_s": round(time.perf_counter() - start, 1),
        "train_steps_per_s": round(summary["steps_per_s"], 1),
        "history": history,
        "final": {k: final.get(k) for k in FINAL_KEYS},
    }


def collect(out: Path, policy: str, seed: int) -> dict | None:
    """The record of a run folder left by an earlier (possibly stopped) invocation, or ``None``."""
    run_dir = out / "runs" / f"{policy}_s{seed}"
    if not (run_dir / "eval_history.json").exists():
        return None
    final = json.loads((run_dir / "eval.json").read_text()) if (run_dir / "eval.json").exists() \
        else {}
    config = json.loads((run_dir / "config.json").read_text())
    return {
        "policy": policy,
        "seed": seed,
        "device": config.get("device"),
        "finished": (run_dir / "final_model.zip").exists(),
        "history": json.loads((run_dir / "eval_history.json").read_text()),
        "final": {k: final.get(k) for k in FINAL_KEYS},
    }


def aggregate(runs: list[dict], metric: str) -> dict[str, dict]:
    out = {}
    for policy in dict.fromkeys(r["policy"] for r in runs):
        curves = [{h["timesteps"]: h for h in r["history"]} for r in runs if r["policy"] == policy]
        # Evaluation steps every seed reached (stopped or resumed runs: the common part).
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        values = np.array([[c[t].get(metric, np.nan) for t in steps] for c in curves])
        if np.isnan(values).all():  # e.g. no success metric on locomotion
            continue
        out[policy] = {
            "timesteps": steps,
            "mean": np.round(np.nanmean(values, axis=0), 4).tolist(),
            "min": np.round(np.nanmin(values, axis=0), 4).tolist(),
            "max": np.round(np.nanmax(values, axis=0), 4).tolist(),
            "seeds": len(curves),
        }
    return out


def plot(curves: dict, metric: str, title: str, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG (pip install matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for policy, c in curves.items():
        ax.plot(c["timesteps"], c["mean"], label=f"{policy} ({c['seeds']} seeds)")
        ax.fill_between(c["timesteps"], c["min"], c["max"], alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="equigym/Sliding-v0")
    parser.add_argument("--policies", nargs="+", default=["hepi", "transformer", "mlp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--total-timesteps", type=int, default=40_000)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--n-epochs", type=int, default=5)
    parser.add_argument("--ent-coef", type=float, default=0.0)
    parser.add_argument("--eval-freq", type=int, default=4_000)
    parser.add_argument("--eval-envs", type=int, default=8)
    parser.add_argument("--eval-episodes", type=int, default=8)
    parser.add_argument("--morphologies", default=None)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--device", default="cpu",
                        help="torch device of the equivariant policies (baselines: cpu)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the equivariant policies")
    parser.add_argument("--collect", action="store_true",
                        help="no training: report the run folders already in --out")
    parser.add_argument("--out", default="benchmarks/results/learning_curves")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(policy, seed) for seed in args.seeds for policy in args.policies]
    if args.collect:
        runs = [r for p, s in pairs if (r := collect(out, p, s)) is not None]
        if not runs:
            raise SystemExit(f"error: no run folder with eval_history.json under {out / 'runs'}")
        write_report(args, out, runs)
        return
    runs: list[dict] = []
    # spawn, not fork: a forked child would inherit torch's thread pool and MuJoCo's GL state.
    pool = ProcessPoolExecutor(max(1, args.jobs), mp_context=multiprocessing.get_context("spawn"))
    with pool:
        futures = [pool.submit(run, args, policy, seed, out) for policy, seed in pairs]
        for fut in futures:  # in submission order, so the JSON's run order is reproducible
            r = fut.result()
            last = r["history"][-1] if r["history"] else {}
            print(f"{r['policy']:12s} seed {r['seed']}: {r['wall_s']:.0f} s on {r['device']}, "
                  f"{r['train_steps_per_s']:.0f} steps/s, last eval {last}", flush=True)
            runs.append(r)
            write_report(args, out, runs, plots=False)
    write_report(args, out, runs)


def write_report(
    args: argparse.Namespace, out: Path, runs: list[dict], plots: bool = True
) -> dict:
    """Write ``learning_curves.json`` (and, with ``plots``, the PNGs) for ``runs``."""
    report = {
        "benchmark": "learning_curves",
        "env": args.env,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "collect")},
        "mean_return": aggregate(runs, "mean_return"),
        "success_rate": aggregate(runs, "success_rate"),
        "runs": runs,
    }
    (out / "learning_curves.json").write_text(json.dumps(report, indent=2) + "\n")
    name = args.env.rsplit("/", 1)[-1]
    for metric in ("mean_return", "success_rate"):
        if plots and report[metric]:
            plot(report[metric], metric, f"{name}: deterministic evaluation",
                 out / f"{metric}.png")
    return report


if __name__ == "__main__":
    main()

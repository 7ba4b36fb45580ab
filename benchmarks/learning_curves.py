"""Learning curves of several policies on one env at an equal, small budget (several seeds).

Each (policy, seed) pair is one ``train.py`` run with periodic deterministic evaluation on fixed
seeds; the script collects the evaluation history of every run, writes the per-policy mean and
spread to JSON and, when matplotlib is installed (``pip install matplotlib``), a PNG of the
curves. It is evidence, not a test: it is not run in CI.

Usage::

    python benchmarks/learning_curves.py --env equigym/Sliding-v0 \
        --policies hepi transformer mlp --seeds 0 1 --total-timesteps 40000 \
        --out benchmarks/results/learning_sliding
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from equigym.train import TrainConfig, train  # noqa: E402


def run(args: argparse.Namespace, policy: str, seed: int, out: Path) -> dict:
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
    )
    start = time.perf_counter()
    summary = train(cfg, command=["benchmarks/learning_curves.py"])
    history = json.loads((Path(summary["run_dir"]) / "eval_history.json").read_text())
    final = summary["eval"] or {}
    return {
        "policy": policy,
        "seed": seed,
        "wall_s": round(time.perf_counter() - start, 1),
        "train_steps_per_s": round(summary["steps_per_s"], 1),
        "history": history,
        "final": {k: final.get(k) for k in ("mean_return", "std_return", "success_rate",
                                             "random_policy", "scripted_policy")},
    }


def aggregate(runs: list[dict], metric: str) -> dict[str, dict]:
    out = {}
    for policy in dict.fromkeys(r["policy"] for r in runs):
        curves = [r["history"] for r in runs if r["policy"] == policy]
        steps = [h["timesteps"] for h in curves[0]]
        values = np.array([[h.get(metric, np.nan) for h in c[: len(steps)]] for c in curves])
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
    parser.add_argument("--out", default="benchmarks/results/learning_curves")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        for policy in args.policies:
            r = run(args, policy, seed, out)
            last = r["history"][-1] if r["history"] else {}
            print(f"{policy:12s} seed {seed}: {r['wall_s']:.0f} s, "
                  f"{r['train_steps_per_s']:.0f} steps/s, last eval {last}", flush=True)
            runs.append(r)
            report = {
                "benchmark": "learning_curves",
                "env": args.env,
                "settings": {k: v for k, v in vars(args).items() if k != "out"},
                "mean_return": aggregate(runs, "mean_return"),
                "success_rate": aggregate(runs, "success_rate"),
                "runs": runs,
            }
            (out / "learning_curves.json").write_text(json.dumps(report, indent=2) + "\n")
    name = args.env.rsplit("/", 1)[-1]
    for metric in ("mean_return", "success_rate"):
        if report[metric]:
            plot(report[metric], metric, f"{name}: deterministic evaluation",
                 out / f"{metric}.png")


if __name__ == "__main__":
    main()

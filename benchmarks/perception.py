"""Perception levels side by side: node and pose errors, per-step cost, wrapped-env throughput.

For each env and level, ``--episodes`` scripted episodes (with action noise) run through
:class:`~equigym.modules.perception.wrapper.PerceptionWrapper` on the held-out pool (test shapes,
test holes; ropes: other seeds than the keypoint networks trained on) and record the wrapper's
``perception_error`` (mean node error, m; rigid objects up to their symmetry) and
``perception_rotation_error`` (rigid objects at levels 1-2). Cost is timed on one thread: the
perception's own time per step, and whole env steps per second with and without the wrapper
(random actions, measured back to back in this process).

Usage::

    python benchmarks/perception.py --envs equigym/Sliding-v0 equigym/RopeClosing-v0 \
        --nets equigym/Sliding-v0=keypoints/sliding --out benchmarks/results/perception

Levels 1-2 of ropes and cloth need off-screen OpenGL (``MUJOCO_GL=egl``). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import equigym  # noqa: E402, F401
from equigym.envs.manipulation.scripted_deformable import (  # noqa: E402
    play_episode,
    scripted_policy,
)
from equigym.modules.perception import PerceptionWrapper, make_perception  # noqa: E402

HELD_OUT = {"equigym/Sliding-v0": {"shape": "test"}, "equigym/Pushing-v0": {"shape": "test"},
            "equigym/Insertion-v0": {"shape": "test"},
            "equigym/InsertionTwoAgents-v0": {"shape": "test"},
            "equigym/ClothHanging-v0": {"hole": "test"}}


def accuracy(env_id: str, level: int, net: str | None, episodes: int, seed: int,
             noise: float) -> dict:
    """Error statistics and perception time over scripted episodes."""
    env = PerceptionWrapper(gym.make(env_id, **HELD_OUT.get(env_id, {})),
                            make_perception(level, net))
    ctl = scripted_policy(env)
    rng = np.random.default_rng(seed)
    errs, rots, cost = [], [], []
    perceive = env.perception.step

    def timed(obs):
        t = time.perf_counter()
        out = perceive(obs)
        cost.append(time.perf_counter() - t)
        return out

    env.perception.step = timed  # time the perception only, not the env
    for ep in range(episodes):
        for _, info, done in play_episode(env, ctl, seed + ep, rng, noise):
            if done:
                break
            errs.append(info["perception_error"])
            if "perception_rotation_error" in info:
                rots.append(info["perception_rotation_error"])
    env.close()
    e = 1e3 * np.asarray(errs)
    out = {"frames": len(errs), "node_error_mm": {"mean": float(e.mean()),
           "median": float(np.median(e)), "p90": float(np.percentile(e, 90))},
           "pck_1cm": float((e < 10).mean()), "pck_2cm": float((e < 20).mean()),
           "perception_ms": float(1e3 * np.mean(cost))}  # fmt: skip
    if rots:
        r = np.degrees(rots)
        out["rotation_error_deg"] = {"mean": float(r.mean()), "median": float(np.median(r)),
                                     "p90": float(np.percentile(r, 90))}
    return out


def throughput(env_id: str, level: int | None, net: str | None, steps: int) -> float:
    """Env steps per second with random actions (resets included)."""
    env = gym.make(env_id)
    if level is not None:
        env = PerceptionWrapper(env, make_perception(level, net))
    env.reset(seed=0)
    env.action_space.seed(0)
    t = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    rate = steps / (time.perf_counter() - t)
    env.close()
    return rate


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", nargs="+", default=["equigym/Sliding-v0",
                                                 "equigym/InsertionTwoAgents-v0",
                                                 "equigym/RopeClosing-v0",
                                                 "equigym/ClothHanging-v0"])
    p.add_argument("--levels", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--nets", nargs="*", default=[], help="ENV=FOLDER of level-2 networks")
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--seed", type=int, default=20_000)
    p.add_argument("--noise", type=float, default=0.3, help="scripted action noise")
    p.add_argument("--steps", type=int, default=300, help="steps per throughput measurement")
    p.add_argument("--out", default="benchmarks/results/perception")
    args = p.parse_args()
    torch.set_num_threads(1)
    nets = dict(item.split("=", 1) for item in args.nets)
    results = {"machine": platform.platform(), "processor": platform.processor(),
               "torch_threads": 1, "settings": vars(args), "envs": {}}
    for env_id in args.envs:
        row = {"held_out": HELD_OUT.get(env_id, "other seeds"),
               "steps_per_s": {"bare": throughput(env_id, None, None, args.steps)}}
        for level in args.levels:
            net = nets.get(env_id)
            if level == 2 and net is None:
                continue
            row[f"level{level}"] = accuracy(env_id, level, net, args.episodes, args.seed,
                                            args.noise)
            rate = throughput(env_id, level, net, args.steps)
            row["steps_per_s"][f"level{level}"] = rate
            row[f"level{level}"]["throughput_ratio"] = rate / row["steps_per_s"]["bare"]
            a = row[f"level{level}"]
            rot = (f", rotation {a['rotation_error_deg']['median']:.1f} deg"
                   if "rotation_error_deg" in a else "")
            print(f"{env_id} level {level}: node error median {a['node_error_mm']['median']:.1f}"
                  f" mm (mean {a['node_error_mm']['mean']:.1f}){rot}; "
                  f"{a['perception_ms']:.1f} ms/step; {rate:.0f} steps/s "
                  f"({a['throughput_ratio']:.2f} of bare)", flush=True)
        results["envs"][env_id] = row
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "perception.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out / 'perception.json'}")


if __name__ == "__main__":
    main()

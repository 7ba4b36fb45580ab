"""Success rate and return of the scripted controller on every manipulation task, per split.

For each rigid task and shape split (``train``, ``test``), and each deformable task and condition
(cloth hole split, rope-shaping target curve), the scripted controller
(:func:`equigym.envs.manipulation.scripted_deformable.scripted_policy`) and a uniformly random
policy run the same seeded episodes (seeds ``0 .. episodes-1``). The rates prove that every task
is well-posed, and are the bar a learned policy should clear.

Usage::

    python benchmarks/scripted_success.py --out benchmarks/results/scripted_success.json
    python benchmarks/scripted_success.py --suite deformable \
        --out benchmarks/results/scripted_success_deformable.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import defaultdict
from datetime import UTC, datetime

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from _common import write_report  # noqa: E402

import equigym  # noqa: E402,F401
from equigym.envs.manipulation.scripted import ScriptedPolicy  # noqa: E402
from equigym.envs.manipulation.scripted_deformable import scripted_policy  # noqa: E402
from equigym.envs.registration import DEFORMABLE_IDS, MANIPULATION_IDS  # noqa: E402

# Deformable conditions: (label, env kwargs).
DEFORMABLE_CONDITIONS = {
    "equigym/RopeClosing-v0": [("default", {})],
    "equigym/RopeShaping-v0": [(f"target {t}", {"target": t}) for t in ("W", "U", "S", "arc")],
    "equigym/ClothHanging-v0": [("train holes", {"hole": "train"}),
                                ("test holes", {"hole": "test"})],
}
_METRICS = ("distance", "orientation_error", "ends_distance", "shape_error", "hole_distance",
            "axis_distance")
_LENGTHS = ("distance", "ends_distance", "shape_error", "hole_distance", "axis_distance")  # m


def run(env, act, seeds) -> list[dict]:
    out = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, term, trunc, info = env.step(act(obs))
            total += reward
            done = term or trunc
        out.append({"shape": info.get("shape", info.get("target", info.get("hole", ""))),
                    "success": bool(info["is_success"]), "return": total,
                    **{k: info[k] for k in _METRICS if k in info}})
    return out


def summary(episodes: list[dict]) -> dict:
    per_shape = defaultdict(list)
    for e in episodes:
        per_shape[e["shape"]].append(e["success"])
    return {
        "episodes": len(episodes),
        "success_rate": round(float(np.mean([e["success"] for e in episodes])), 4),
        "mean_return": round(float(np.mean([e["return"] for e in episodes])), 4),
        **{f"median_final_{k}_m": round(float(np.median([e[k] for e in episodes])), 5)
           for k in _LENGTHS if k in episodes[0]},
        "per_shape_success": {k: round(float(np.mean(v)), 3) for k, v in sorted(per_shape.items())},
    }


def compare(env, policy, episodes: int, label: str, **row) -> dict:
    """Scripted controller and random actions on the same seeded episodes; one result row."""
    start = time.perf_counter()
    scripted = run(env, policy, range(episodes))
    rng = np.random.default_rng(0)
    shape = env.action_space.shape
    random = run(env, lambda _obs: rng.uniform(-1, 1, shape), range(episodes))
    row.update(scripted=summary(scripted), random=summary(random),
               wall_s=round(time.perf_counter() - start, 1))
    scr, rnd = row["scripted"], row["random"]
    print(f"{row['env_id']:32s} {label:12s}: scripted {scr['success_rate']:.0%} "
          f"(return {scr['mean_return']:.2f}), random {rnd['success_rate']:.0%} "
          f"(return {rnd['mean_return']:.2f})", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task and split")
    parser.add_argument("--out", default=None, help="write the JSON here (default: stdout only)")
    parser.add_argument("--suite", choices=("rigid", "deformable", "all"), default="rigid")
    args = parser.parse_args()
    results = []
    rigid = MANIPULATION_IDS if args.suite in ("rigid", "all") else {}
    for env_id, task in rigid.items():
        for split in ("train", "test"):
            env = gym.make(env_id, shape=split).unwrapped
            results.append(compare(env, ScriptedPolicy(task), args.episodes, split,
                                   env_id=env_id, task=task, split=split))
    for env_id in DEFORMABLE_IDS if args.suite in ("deformable", "all") else {}:
        for label, kwargs in DEFORMABLE_CONDITIONS[env_id]:
            env = gym.make(env_id, **kwargs).unwrapped
            results.append(compare(env, scripted_policy(env), args.episodes, label,
                                   env_id=env_id, condition=label, kwargs=kwargs))
    report = {
        "benchmark": "scripted_success",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "mujoco": mujoco.__version__, "gymnasium": gym.__version__},
        "settings": {"episodes": args.episodes, "seeds": f"0..{args.episodes - 1}"},
        "results": results,
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()

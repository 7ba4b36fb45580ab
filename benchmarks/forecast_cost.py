"""Cost of the forecasting module on one core: forecaster forward pass and env steps/s with it.

For each deformable env, one random-action trajectory is replayed through the bare env and through
``ForecastWrapper(env, forecaster)`` (default-size forecaster: 8 past and 8 future frames, 16
vector channels, width 64, 2 layers, k = 8), alternating, best of ``--rounds``; the JSON gives
both throughputs, their ratio and the forecaster's forward time per step (batch of one graph).

Usage::

    python benchmarks/forecast_cost.py --out benchmarks/results/forecast_cost.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import write_report  # noqa: E402

import equigym  # noqa: E402
from equigym.modules.forecast.model import EqMotionForecaster  # noqa: E402
from equigym.modules.forecast.wrapper import ForecastWrapper  # noqa: E402

IDS = ("equigym/RopeClosing-v0", "equigym/RopeShaping-v0", "equigym/ClothHanging-v0")


def steps_per_s(env: gym.Env, actions: np.ndarray, seed: int) -> float:
    env.reset(seed=seed)
    start = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset(seed=seed)
    return len(actions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = EqMotionForecaster().eval()
    results = {}
    for env_id in IDS:
        bare = gym.make(env_id)
        wrapped = ForecastWrapper(gym.make(env_id), model)
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (args.steps, *bare.action_space.shape)).astype(np.float32)
        best_bare = best_wrapped = 0.0
        for _ in range(args.rounds):
            best_bare = max(best_bare, steps_per_s(bare, actions, 0))
            best_wrapped = max(best_wrapped, steps_per_s(wrapped, actions, 0))
        obs, _ = wrapped.reset(seed=0)
        node = wrapped.node_type
        past = torch.as_tensor(np.stack(wrapped._history, axis=1))[None]
        mask = torch.as_tensor(obs[f"{node}/mask"])[None]
        with torch.no_grad():
            for _ in range(10):
                model(past, mask)
            start = time.perf_counter()
            for _ in range(100):
                model(past, mask)
        bare.close()
        wrapped.close()
        results[env_id] = {
            "node_type": node,
            "nodes": int(mask.sum()),
            "env_steps_per_s": round(best_bare, 1),
            "with_forecast_steps_per_s": round(best_wrapped, 1),
            "ratio": round(best_wrapped / best_bare, 3),
            "forecaster_forward_ms": round((time.perf_counter() - start) * 10, 3),
        }
        print(env_id, results[env_id], flush=True)
    write_report({
        "benchmark": "forecast_cost",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "threads": 1, "equigym": equigym.__version__},
        "settings": {"steps": args.steps, "rounds": args.rounds, "forecaster": model.config},
        "results": results,
    }, args.out)  # fmt: skip


if __name__ == "__main__":
    main()

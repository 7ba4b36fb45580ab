"""Train an equivariant forecaster on rollout windows and score it against constant velocity.

::

    python -m equigym.modules.forecast.train --env equigym/RopeShaping-v0 --out forecasters/rope
    python -m equigym.modules.forecast.train --env equigym/ClothHanging-v0 --episodes 60

Episodes of the env's scripted controller (with action noise) are recorded
(:func:`~equigym.modules.forecast.data.collect_tracks`); the first ``1 - val_fraction`` of them
train, the rest (other seeds) score. The output folder gets ``forecaster.pt`` (weights and config,
loadable with :func:`~equigym.modules.forecast.model.load_forecaster` without unpickling),
``config.json`` and ``metrics.json``: ADE and FDE (mean and final displacement error, metres)
per horizon step for the forecaster and the constant-velocity baseline on the held-out episodes,
and the forecaster's equivariance error under random rotations, reflections and translations.
"""

from __future__ import annotations

import os

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import tyro  # noqa: E402

from equigym.modules.forecast.data import collect_tracks, windows  # noqa: E402
from equigym.modules.forecast.model import (  # noqa: E402
    EqMotionForecaster,
    constant_velocity,
)


@dataclass(frozen=True)
class ForecastConfig:
    """Train an EqMotion-style forecaster of an equigym env's node positions."""

    env: str = "equigym/RopeShaping-v0"
    """Env whose nodes to forecast (rope, cloth, rigid objects...)."""
    node_type: str | None = None
    """Node type to forecast (default: the first non-actuator type)."""
    episodes: int = 60
    """Recorded episodes (scripted controller with action noise)."""
    val_fraction: float = 0.2
    """Share of the episodes (the last seeds) held out for scoring."""
    noise: float = 0.3
    """Std of the Gaussian noise on the scripted actions."""
    history: int = 8
    """Past frames the forecaster sees."""
    horizon: int = 8
    """Future frames it predicts."""
    stride: int = 2
    """Step between the starts of training windows."""
    channels: int = 16
    """Vector channels."""
    hidden: int = 64
    """Invariant feature width."""
    layers: int = 2
    """Message-passing layers."""
    k: int = 8
    """Neighbours per node."""
    epochs: int = 15
    """Passes over the training windows."""
    batch_size: int = 32
    """Windows per gradient step."""
    lr: float = 1e-3
    """Adam learning rate."""
    seed: int = 0
    """Seed of the episodes, the initialisation and the shuffling."""
    threads: int = 2
    """Torch CPU threads."""
    out: Path = Path("forecasters/rope_shaping")
    """Output folder."""


def ade_fde(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
    """Mean displacement error per horizon step (ADE over steps 1..k) and final (FDE), metres."""
    err = (pred - target).norm(dim=-1)  # (B, N, H)
    w = mask[..., None].expand_as(err)
    per_step = (err * w).sum((0, 1)) / w.sum((0, 1)).clamp_min(1.0)
    ade = torch.cumsum(per_step, 0) / torch.arange(1, len(per_step) + 1)
    return {"ade": float(ade[-1]), "fde": float(per_step[-1]),
            "ade_per_horizon": [round(float(a), 6) for a in ade],
            "fde_per_horizon": [round(float(f), 6) for f in per_step]}  # fmt: skip


def equivariance_error(model: EqMotionForecaster, past: torch.Tensor, mask: torch.Tensor,
                       seed: int = 0, trials: int = 4) -> dict[str, float]:  # fmt: skip
    """Largest deviation of ``f(R x + t)`` from ``R f(x) + t`` over random E(3) elements.

    Returns:
        ``{"abs_m": max |f(R x + t) - (R f(x) + t)| in metres, "relative": the same divided by
        the mean |f(x)| (the definition of shared/docs: float32 rounding is ~1e-7)}``.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        base = model(past, mask)
        scale = base.norm(dim=-1).mean().clamp_min(1e-9)
        worst = 0.0
        for i in range(trials):
            q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen))
            q = q * torch.linalg.det(q).sign()  # a rotation...
            if i % 2:  # ... and every other element a reflection
                q = q * torch.tensor([1.0, 1.0, -1.0])
            t = torch.randn(3, generator=gen)
            moved = model(past @ q.T + t, mask)
            worst = max(worst, float((moved - (base @ q.T + t)).norm(dim=-1).max()))
    return {"abs_m": worst, "relative": worst / float(scale)}


def train_forecaster(cfg: ForecastConfig) -> dict[str, Any]:
    """Record, train, score and save as ``cfg`` says; the metrics (also ``metrics.json``)."""
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {cfg.val_fraction}")
    n_val = max(1, round(cfg.episodes * cfg.val_fraction))
    if cfg.episodes - n_val < 1:
        raise ValueError("need at least 2 episodes (one to train, one to score)")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    tracks = collect_tracks(cfg.env, cfg.episodes, cfg.seed, noise=cfg.noise,
                            node_type=cfg.node_type)  # fmt: skip
    collect_s = time.perf_counter() - start
    # Training windows include the reset-padded ones the wrapper sees after a reset.
    train_part, val_part = tracks.subset(slice(None, -n_val)), tracks.subset(slice(-n_val, None))
    data, masks = map(torch.as_tensor, windows(train_part, cfg.history, cfg.horizon, cfg.stride,
                                               pad_start=True))  # fmt: skip
    val, vm = map(torch.as_tensor, windows(val_part, cfg.history, cfg.horizon, stride=1))
    model = EqMotionForecaster(cfg.history, cfg.horizon, cfg.channels, cfg.hidden, cfg.layers,
                               cfg.k)  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = []
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for i in range(0, len(data), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            batch, m = data[idx], masks[idx]
            pred = model(batch[:, :, : cfg.history], m)
            # ADE loss (EqMotion's): mean displacement over real nodes and horizon steps.
            err = (pred - batch[:, :, cfg.history :]).norm(dim=-1)
            loss = (err * m[..., None]).sum() / (m.sum() * cfg.horizon)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        losses.append(round(total / len(data), 6))
    train_s = time.perf_counter() - start
    model.eval()
    past, future = val[:, :, : cfg.history], val[:, :, cfg.history :]
    with torch.no_grad():
        ours = ade_fde(model(past, vm), future, vm)
        cv = ade_fde(constant_velocity(past, cfg.horizon), future, vm)
    metrics = {
        "env": cfg.env, "node_type": tracks.node_type,
        "nodes": [int(m.sum()) for m in tracks.masks[:1]][0],
        "train_windows": len(data), "val_windows": len(val), "val_episodes": n_val,
        "forecaster": ours, "constant_velocity": cv,
        "ade_ratio_to_constant_velocity": ours["ade"] / max(cv["ade"], 1e-12),
        "fde_ratio_to_constant_velocity": ours["fde"] / max(cv["fde"], 1e-12),
        "equivariance_error": equivariance_error(model, past[:16], vm[:16], cfg.seed),
        "train_loss": losses, "collect_s": round(collect_s, 1), "train_s": round(train_s, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    saved = {"config": model.config, "state_dict": model.state_dict(), "env": cfg.env,
             "node_type": tracks.node_type}  # fmt: skip
    torch.save(saved, cfg.out / "forecaster.pt")
    (cfg.out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str) + "\n")
    (cfg.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``python -m equigym.modules.forecast.train``)."""
    cfg = tyro.cli(ForecastConfig, args=argv)
    try:
        m = train_forecaster(cfg)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"{m['env']} ({m['node_type']}, {m['nodes']} nodes): ADE {m['forecaster']['ade']:.4f} "
          f"m vs constant velocity {m['constant_velocity']['ade']:.4f} m "
          f"({m['ade_ratio_to_constant_velocity']:.2f}x), FDE {m['forecaster']['fde']:.4f} vs "
          f"{m['constant_velocity']['fde']:.4f} m; equivariance error "
          f"{m['equivariance_error']['relative']:.1e}; saved to {cfg.out}")  # fmt: skip


if __name__ == "__main__":
    main()

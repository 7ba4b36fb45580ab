"""Train the level-2 keypoint network on simulator ground truth and score it against level 1.

::

    python -m equigym.modules.perception.train --env equigym/Sliding-v0 --out keypoints/sliding
    python -m equigym.modules.perception.train --env equigym/ClothHanging-v0 --episodes 12

Episodes of the env's scripted controller (with action noise) run with level-1 perception; every
``every``-th frame gives the point cloud, level 1's fit (the network's input, jittered by up to
``jitter`` m during training) and the true nodes (for a rigid object: the symmetric copy of its
true pose nearest the fit). Training frames come from the training pool (shapes, holes) and
seeds ``seed...``; validation frames from ``val_env_kwargs`` (default: the held-out shapes or
holes) and other seeds. The output folder gets ``keypoints.pt`` (weights, loadable with
:func:`~equigym.modules.perception.keypoints.load_keypoint_net` without unpickling),
``config.json`` and ``metrics.json``: mean node error (mm), PCK at 1 and 2 cm and, for rigid
objects, the rotation error (degrees) of level 1 and of the network on the validation frames,
and the network's equivariance error under random rotations, reflections and translations.
"""

from __future__ import annotations

import os

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import tyro  # noqa: E402
from torch import nn  # noqa: E402

from equigym.envs.manipulation.scripted import kabsch, rotation_angle  # noqa: E402
from equigym.modules.perception.keypoints import (  # noqa: E402
    KeypointNet,
    inputs,
    save_keypoint_net,
)
from equigym.modules.perception.levels import GeometricPerception  # noqa: E402

_HELD_OUT = {"RigidManipulationEnv": {"shape": "test"}, "ClothHangingEnv": {"hole": "test"}}


@dataclass(frozen=True)
class KeypointConfig:
    """Train an equivariant keypoint network that refines level-1 perception."""

    env: str = "equigym/Sliding-v0"
    """Env whose tracked nodes to perceive (rigid tasks, ropes, cloth)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments of the training env."""
    val_env_kwargs: dict[str, Any] | None = None
    """Constructor arguments of the validation env (default: held-out shapes / holes)."""
    episodes: int = 16
    """Training episodes (scripted controller with action noise)."""
    val_episodes: int = 4
    """Validation episodes (other seeds)."""
    every: int = 2
    """Keep every n-th frame of an episode."""
    noise: float = 0.3
    """Std of the Gaussian noise on the scripted actions."""
    jitter: float = 0.01
    """Largest std (m) of the Gaussian jitter added to the level-1 fit of training frames."""
    hidden: int = 64
    """Feature width."""
    layers: int = 3
    """Refinement rounds."""
    k: int = 16
    """Points attended per node."""
    epochs: int = 30
    """Passes over the training frames."""
    batch_size: int = 32
    """Frames per gradient step."""
    lr: float = 1e-3
    """Adam learning rate (cosine decay to 0)."""
    seed: int = 0
    """Seed of the episodes and the network."""
    threads: int = 2
    """Torch CPU threads."""
    out: Path = Path("keypoints")
    """Output folder."""


def collect_frames(env_id: str, env_kwargs: dict[str, Any], episodes: int, seed: int,
                   every: int, noise: float) -> dict[str, np.ndarray]:
    """Frames of scripted episodes with level-1 perception: network inputs and targets.

    Returns:
        Stacked arrays ``points, pmask, guess, scalars, adj, nmask`` (inputs, centred on the
        guess), ``target`` (true nodes, same centring) and ``rigid`` (0-d bool).

    Raises:
        ValueError: For an env level 1 does not cover, or ``episodes < 1``.
    """
    from equigym.envs.manipulation.scripted_deformable import play_episode, scripted_policy

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    try:
        env = gym.make(env_id, **env_kwargs)
    except gym.error.Error as err:
        raise ValueError(f"cannot make {env_id!r}: {err}") from None
    perception = GeometricPerception()
    try:
        perception.bind(env)
        t, fitter = perception.node_type, perception.fitter
        controller = scripted_policy(env)
        rng = np.random.default_rng(seed)
        rows: list[tuple[np.ndarray, ...]] = []
        for ep in range(episodes):
            for step, (obs, _, done) in enumerate(
                    play_episode(env, controller, seed + ep, rng, noise)):
                est = perception.reset(obs, rng) if step == 0 else perception.step(obs)
                if step % every == 0 and not done:
                    truth = (fitter.matched_truth(est) if fitter.kind == "rigid"
                             else np.asarray(obs[f"{t}/pos"], dtype=np.float64))
                    *arrays, centre = inputs(fitter.points, est, obs, t)
                    target = ((truth - centre) * arrays[-1][:, None]).astype(np.float32)
                    rows.append((*arrays, target))
    finally:
        perception.close()
        env.close()
    names = ("points", "pmask", "guess", "scalars", "adj", "nmask", "target")
    out = {n: np.stack([r[i] for r in rows]) for i, n in enumerate(names)}
    out["rigid"] = np.array(fitter.kind == "rigid")
    return out


def _tensors(frames: dict[str, np.ndarray], idx: np.ndarray | slice) -> list[torch.Tensor]:
    keys = ("points", "pmask", "guess", "scalars", "adj", "nmask")
    return [torch.as_tensor(frames[k][idx]) for k in keys]


def node_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean distance over real nodes (m)."""
    d = (pred - target).norm(dim=-1)
    return (d * mask).sum() / mask.sum().clamp(min=1.0)


def rigid_projection(pred: np.ndarray, frames: dict[str, np.ndarray]) -> np.ndarray:
    """The known outline fitted to each frame's predicted nodes (Kabsch): level 2's output.

    For rigid objects; the target nodes are the outline under the true pose.
    """
    out = pred.copy()
    for i, m in enumerate(frames["nmask"] > 0.5):
        t, p = frames["target"][i][m], pred[i][m]
        rot = kabsch(t, p)
        out[i][m] = (t - t.mean(axis=0)) @ rot.T + p.mean(axis=0)
    return out


def score(pred: np.ndarray, frames: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean node error (mm), PCK at 1 and 2 cm, rigid rotation error (deg) of predictions."""
    mask = frames["nmask"] > 0.5
    d = np.linalg.norm(pred - frames["target"], axis=-1)[mask]
    out = {"node_error_mm": float(1e3 * d.mean()), "median_node_error_mm":
           float(1e3 * np.median(d)), "pck_1cm": float((d < 0.01).mean()),
           "pck_2cm": float((d < 0.02).mean())}
    if bool(frames["rigid"]):
        rot = [math.degrees(rotation_angle(kabsch(frames["target"][i][m], pred[i][m])))
               for i, m in enumerate(mask)]
        out["rotation_error_deg"] = float(np.mean(rot))
        out["median_rotation_error_deg"] = float(np.median(rot))
    return out


@torch.no_grad()
def equivariance_error(net: KeypointNet, frames: dict[str, np.ndarray], n: int = 32,
                       seed: int = 0) -> dict[str, float]:
    """Largest ``|f(g x) - g f(x)|`` over ``n`` frames under random orthogonal maps and shifts.

    Returns:
        ``abs_m`` (largest node deviation, m) and ``relative`` (over the largest distance of an
        output node from the guess's centroid, the frame's size: inputs are centred on it).
    """
    gen = torch.Generator().manual_seed(seed)
    idx = np.arange(min(n, len(frames["points"])))
    pts, pm, g, s, adj, nm = _tensors(frames, idx)
    q, _ = torch.linalg.qr(torch.randn(len(idx), 3, 3, generator=gen))
    q[: len(idx) // 2, :, 0] *= -1  # half of them reflections
    shift = 0.1 * torch.randn(len(idx), 1, 3, generator=gen)
    y = net(pts, pm, g, s, adj, nm)
    y2 = net(pts @ q.transpose(1, 2) + shift, pm, g @ q.transpose(1, 2) + shift, s, adj, nm)
    dev = ((y @ q.transpose(1, 2) + shift - y2).norm(dim=-1) * nm).max()
    size = ((y.norm(dim=-1)) * nm).max().clamp(min=1e-12)
    return {"abs_m": float(dev), "relative": float(dev / size)}


def train_keypoints(cfg: KeypointConfig) -> dict[str, Any]:
    """Collect frames, train, score and save (see the module docstring).

    Returns:
        The metrics written to ``metrics.json``.
    """
    for name in ("episodes", "val_episodes", "every", "epochs", "batch_size", "hidden", "layers",
                 "k", "threads"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if not cfg.jitter >= 0 or not cfg.lr > 0:
        raise ValueError(f"--jitter must be >= 0 and --lr > 0, got {cfg.jitter} and {cfg.lr}")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    try:
        probe = gym.make(cfg.env, **cfg.env_kwargs)
    except gym.error.Error as err:
        raise ValueError(f"cannot make {cfg.env!r}: {err}") from None
    kind = type(probe.unwrapped).__name__
    probe.close()
    val_kwargs = (dict(_HELD_OUT.get(kind, {}), **{k: v for k, v in cfg.env_kwargs.items()
                                                  if k not in _HELD_OUT.get(kind, {})})
                  if cfg.val_env_kwargs is None else cfg.val_env_kwargs)  # fmt: skip
    train = collect_frames(cfg.env, cfg.env_kwargs, cfg.episodes, cfg.seed, cfg.every, cfg.noise)
    val = collect_frames(cfg.env, val_kwargs, cfg.val_episodes, cfg.seed + 10_000, cfg.every,
                         cfg.noise)
    collect_s = time.perf_counter() - start
    net = KeypointNet(train["scalars"].shape[-1], cfg.hidden, cfg.layers, cfg.k)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    n = len(train["points"])
    steps = cfg.epochs * max(1, math.ceil(n / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng(cfg.seed)
    target = torch.as_tensor(train["target"])
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        order = rng.permutation(n)
        for b in range(0, n, cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            pts, pm, g, s, adj, nm = _tensors(train, idx)
            sigma = torch.as_tensor(rng.uniform(0, cfg.jitter, (len(idx), 1, 1)),
                                    dtype=torch.float32)
            g = (g + sigma * torch.randn_like(g)) * nm[..., None]
            loss = node_error(net(pts, pm, g, s, adj, nm), target[idx], nm)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
    train_s = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        pred = np.concatenate([net(*_tensors(val, slice(b, b + 64))).numpy()
                               for b in range(0, len(val["points"]), 64)])
        t1 = time.perf_counter()
        for i in range(min(50, len(val["points"]))):
            net(*_tensors(val, slice(i, i + 1)))
        forward_ms = 1e3 * (time.perf_counter() - t1) / min(50, len(val["points"]))
    net.trained_on = {"env": cfg.env, "env_kwargs": cfg.env_kwargs}
    metrics = {
        "env": cfg.env,
        "train_frames": int(n),
        "val_frames": int(len(val["points"])),
        "val_env_kwargs": val_kwargs,
        "level1": score(val["guess"], val),
        "level2": score(rigid_projection(pred, val) if bool(val["rigid"]) else pred, val),
        "equivariance_error": equivariance_error(net, val),
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "forward_ms_one_frame": forward_ms,
        "collect_s": collect_s,
        "train_s": train_s,
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    save_keypoint_net(net, cfg.out / "keypoints.pt")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    (cfg.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (cfg.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    cfg = tyro.cli(KeypointConfig, args=argv)
    try:
        m = train_keypoints(cfg)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    l1, l2 = m["level1"], m["level2"]
    print(f"{cfg.env}: {m['train_frames']} training frames, {m['val_frames']} validation frames "
          f"({m['val_env_kwargs'] or 'other seeds'})")
    print(f"node error   level 1 {l1['node_error_mm']:.1f} mm, level 2 {l2['node_error_mm']:.1f} "
          f"mm (PCK@2cm {l1['pck_2cm']:.2f} → {l2['pck_2cm']:.2f})")
    if "rotation_error_deg" in l2:
        print(f"rotation     level 1 {l1['rotation_error_deg']:.1f} deg, level 2 "
              f"{l2['rotation_error_deg']:.1f} deg")
    print(f"equivariance {m['equivariance_error']['relative']:.1e} (relative); "
          f"{m['parameters']} parameters; wrote {cfg.out}")


if __name__ == "__main__":
    main()

"""Policy cost on CPU: forward / forward+backward per minibatch, and PPO env-steps/s vs SB3's MLP.

Two measurements, both side by side in one process, for every registered policy (or a chosen set):

* ``minibatch``: a batch of 256 graphs built from real observations (locomotion:
  humanoid_9_full, 9 nodes, and cheetah_14_full, 14 nodes; Insertion-v0: 12 object + 1 actuator
  nodes); median seconds of ``forward`` and of ``forward + backward`` over ``--repeats`` runs
  with ``torch.set_num_threads(--threads)``. Variants: ``hepi-ponita`` (PONITA backbone),
  ``hepi-deepsets`` (DeepSets critic), ``hepi-fast`` (DeepSets critic, width 32, 8 vector
  channels, 2 rounds), ``set-fast`` (width 64, 16 vector channels, 2 layers).
* ``ppo``: PPO env-steps/s (collection + updates) on ``--env`` with ``--n-envs`` sub-envs, and the
  ratio to SB3's own ``MultiInputPolicy`` PPO under identical settings; ``--compile-policies``
  times some of them again with ``torch.compile`` (``make_ppo(compile=True)``).

Usage::

    python benchmarks/policy_speed.py --out benchmarks/results/policy_speed.json \
        --compile-policies hepi hepi-deepsets hepi-fast set set-fast
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from _common import write_report  # noqa: E402

import equigym  # noqa: E402
from equigym import policies  # noqa: E402
from equigym.graph import stack  # noqa: E402

BATCH = 256
# The reference SET implementation (3D-SGRL) at width 128, 3 layers, 2 heads on 2 threads.
SET_REFERENCE = {"forward_s_14_nodes": 0.34, "forward_backward_s_9_nodes": 0.76}
GRAPHS = {"9_nodes": "humanoid_9_full", "14_nodes": "cheetah_14_full",
          "insertion": "equigym/Insertion-v0"}
VARIANTS = {
    "hepi-ponita": ("hepi", {"backbone": "ponita"}),
    "hepi-deepsets": ("hepi", {"critic": "deepsets"}),
    "hepi-fast": ("hepi", {"critic": "deepsets", "hidden_dim": 32, "vector_dim": 8,
                           "n_layers": 2}),
    "set-fast": ("set", {"hidden_dim": 64, "vector_dim": 16, "n_layers": 2}),
}
"""Extra benchmark names: registry policy and options."""


def observations(source: str, n: int) -> tuple[dict[str, torch.Tensor], object]:
    """``n`` observations from random-action rollouts (a morphology or an env id), batched."""
    if source.startswith("equigym/"):
        env = gym.make(source)
    else:
        env = gym.make("equigym/Locomotion3D-v0", morphology=source)
    env.action_space.seed(0)
    out, obs = [], env.reset(seed=0)[0]
    for _ in range(n):
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        out.append(obs)
        if term or trunc:
            obs = env.reset()[0]
    return {k: torch.as_tensor(v) for k, v in stack(out).items()}, env.unwrapped.graph_spec


def time_minibatch(name: str, morphology: str, repeats: int) -> dict[str, float]:
    obs, spec = observations(morphology, BATCH)
    torch.manual_seed(0)
    base, cfg = VARIANTS.get(name, (name, {}))
    net = policies.make(base, spec, **cfg)
    fwd, fwd_bwd = [], []
    for i in range(repeats + 1):  # the first run warms up allocators and is dropped
        t0 = time.perf_counter()
        with torch.no_grad():
            net(obs)
        t1 = time.perf_counter()
        mean, log_std, value = net(obs)
        (mean.square().mean() + log_std.mean() + value.square().mean()).backward()
        net.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        if i:
            fwd.append(t1 - t0)
            fwd_bwd.append(t2 - t1)
    return {
        "forward_s": round(statistics.median(fwd), 5),
        "forward_backward_s": round(statistics.median(fwd_bwd), 5),
        "parameters": sum(p.numel() for p in net.parameters()),
    }


def time_ppo(
    name: str | None, env_id: str, n_envs: int, steps: int, seed: int = 0, compile: bool = False
) -> float:
    """PPO env-steps/s; ``name=None`` is SB3's own MultiInputPolicy.

    With ``compile``, the warm-up rollout and update also compile the policy (one compilation
    per batch size), so the timed steps measure the compiled steady state.
    """
    from stable_baselines3 import PPO

    from equigym.agents import make_ppo, make_vec_env

    venv = make_vec_env(env_id, n_envs, seed)
    settings = {"n_steps": 256, "batch_size": 256, "n_epochs": 10, "seed": seed, "device": "cpu"}
    if name is None:
        model = PPO("MultiInputPolicy", venv, **settings)
    else:
        base, cfg = VARIANTS.get(name, (name, {}))
        model = make_ppo(venv, policy=base, policy_cfg=cfg, compile=compile, **settings)
    model.learn(n_envs * settings["n_steps"])  # warm-up rollout and update
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    sps = steps / (time.perf_counter() - t0)
    venv.close()
    return sps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policies", nargs="+", default=[*sorted(policies.POLICIES), *VARIANTS])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--env", default="equigym/Hopper3D-v0")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--ppo-steps", type=int, default=8192, help="timed PPO steps (0: skip)")
    parser.add_argument("--ppo-policies", nargs="+", default=None,
                        help="policies timed in PPO (default: all of --policies)")
    parser.add_argument("--compile-policies", nargs="+", default=[],
                        help="also time these in PPO with torch.compile (reported as NAME+compile)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    minibatch = {
        name: {g: time_minibatch(name, m, args.repeats) for g, m in GRAPHS.items()}
        for name in args.policies
    }
    for name, res in minibatch.items():
        print(name, json.dumps(res), flush=True)
    if "set" in minibatch:  # SET's defaults are the reference's size (128 wide, 3 layers, 2 heads)
        ref, ours = SET_REFERENCE, minibatch["set"]
        minibatch["set_vs_reference"] = {
            **ref,
            "forward_speedup": round(ref["forward_s_14_nodes"] / ours["14_nodes"]["forward_s"], 2),
            "forward_backward_speedup": round(
                ref["forward_backward_s_9_nodes"] / ours["9_nodes"]["forward_backward_s"], 2),
        }
        print("set vs reference", minibatch["set_vs_reference"], flush=True)
    ppo = {}
    if args.ppo_steps:
        baseline = time_ppo(None, args.env, args.n_envs, args.ppo_steps)
        ppo["sb3_multi_input_mlp_steps_per_s"] = round(baseline, 1)
        timed = [(n, False) for n in args.ppo_policies or args.policies]
        for name, compiled in [*timed, *((n, True) for n in args.compile_policies)]:
            sps = time_ppo(name, args.env, args.n_envs, args.ppo_steps, compile=compiled)
            key = f"{name}+compile" if compiled else name
            ppo[key] = {"steps_per_s": round(sps, 1), "ratio_to_sb3_mlp": round(sps / baseline, 3)}
            print(f"ppo {key}: {sps:.0f} steps/s ({sps / baseline:.2f} x SB3 MLP)", flush=True)
    report = {
        "benchmark": "policy_speed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "threads": args.threads,
            "equigym": equigym.__version__,
        },
        "settings": {
            "batch": BATCH, "graphs": GRAPHS, "repeats": args.repeats, "env": args.env,
            "n_envs": args.n_envs, "ppo_steps": args.ppo_steps,
            "ppo": "n_steps 256, batch 256, 10 epochs, default policy sizes",
            "compiled": args.compile_policies,
        },  # fmt: skip
        "minibatch": minibatch,
        "ppo": ppo,
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()

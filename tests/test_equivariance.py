"""Exact equivariance of every equivariant policy on every registered env.

Parametrised over the registries (``equigym.policies.POLICIES`` x ``equigym.ENV_IDS``), so policies
and envs added later are held to the same standard without editing this file. Two checks:

* the task's symmetry: a rotation about gravity plus a translation (gravity unchanged);
* the network's symmetry: a full rotation with gravity rotated too (gravity is an input vector).

Equivariant policies (``equigym.policies.EQUIVARIANT``) must map both to the transformed action
mean and unchanged log-std and value within 1e-5 (float32). Baselines' errors are reported, and
must be clearly non-zero, which shows the transformations really change the input.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import random_rotation, rot_z

import equigym
from equigym import policies
from equigym.graph import stack, transform_action, transform_observation

ATOL = 1e-5
CASES = [(p, e) for p in sorted(policies.POLICIES) for e in equigym.ENV_IDS]


def _observations(env_id: str, n: int = 4) -> dict[str, np.ndarray]:
    """A batch of ``n`` non-trivial observations (different seeds, a few random steps each)."""
    env = gym.make(env_id)
    env.action_space.seed(0)
    out = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        for _ in range(3 + seed):
            obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return stack(out), env.unwrapped.graph_spec


def _outputs(net, obs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with torch.no_grad():
        mean, log_std, value = net({k: torch.as_tensor(v) for k, v in obs.items()})
    return mean.double().numpy(), log_std.double().numpy(), value.double().numpy()


def _errors(net, obs, spec, rot, t) -> dict[str, float]:
    mean, log_std, value = _outputs(net, obs)
    mean2, log_std2, value2 = _outputs(net, transform_observation(obs, spec, rot, t))
    return {
        "mean": float(np.abs(mean2 - transform_action(mean, spec, rot)).max()),
        "log_std": float(np.abs(log_std2 - log_std).max()),
        "value": float(np.abs(value2 - value).max()),
    }


def _transforms(rng: np.random.Generator) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    about_g = [
        (rot_z(rng.uniform(-np.pi, np.pi)), np.r_[rng.uniform(-3, 3, 2), 0.0]) for _ in range(3)
    ]
    full = [(random_rotation(rng), rng.uniform(-3, 3, 3)) for _ in range(3)]
    return {"about_gravity": about_g, "full_rotation_gravity_rotated": full}


@pytest.mark.parametrize(("policy", "env_id"), CASES, ids=[f"{p}-{e}" for p, e in CASES])
def test_policy_equivariance(policy, env_id, record_property):
    torch.manual_seed(0)
    obs, spec = _observations(env_id)
    net = policies.make(policy, spec).eval()
    rng = np.random.default_rng(1)
    worst = {}
    for group, transforms in _transforms(rng).items():
        worst[group] = max(max(_errors(net, obs, spec, r, t).values()) for r, t in transforms)
    record_property("equivariance_error", worst)
    print(f"{policy} on {env_id}: max equivariance error {worst}")
    if policy in policies.EQUIVARIANT:
        assert max(worst.values()) <= ATOL, worst
    else:
        # A baseline reads world-frame components: if its error were ~0, the transformations
        # would not be reaching the input and the checks above would prove nothing.
        assert worst["about_gravity"] > 100 * ATOL, worst


def test_equivariant_names_are_registered():
    assert policies.EQUIVARIANT <= set(policies.POLICIES)

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

import equigym
from equigym import policies
from equigym.graph import stack
from equigym.policies.equivariance import equivariance_error, symmetry_transforms

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


@pytest.mark.parametrize(("policy", "env_id"), CASES, ids=[f"{p}-{e}" for p, e in CASES])
def test_policy_equivariance(policy, env_id, record_property):
    torch.manual_seed(0)
    obs, spec = _observations(env_id)
    net = policies.make(policy, spec).eval()
    worst = {
        group: equivariance_error(net, obs, spec, transforms)["max"]
        for group, transforms in symmetry_transforms(np.random.default_rng(1)).items()
    }
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

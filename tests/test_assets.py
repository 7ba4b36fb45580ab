"""The example XML shipped for users loads and behaves as its comments say."""

from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import equigym  # noqa: F401

EXAMPLE = Path(__file__).resolve().parents[1] / "assets" / "example_crawler.xml"


def test_example_crawler_loads_and_steps():
    env = gym.make("equigym/Locomotion3D-v0", xml_file=str(EXAMPLE))
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    spec = env.unwrapped.graph_spec
    assert spec.node_type("body").count == 5  # torso + four legs; the floor is not a node
    # Two hinges per leg fill slots 0 and 1; the passive back-left x hinge is masked.
    mask = obs["action_mask"].reshape(5, 3)
    assert mask[0].sum() == 0 and mask[1:, 2].sum() == 0
    assert mask[1:, :2].sum() == 7 and mask[4, 1] == 0
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward) and not info["sim_unstable"]

"""SB3 glue: masked Gaussian, graph actor-critic policy, vector envs, PPO learn/save/load."""

import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

import equigym  # noqa: E402,F401
from equigym.agents import (  # noqa: E402
    GraphActorCriticPolicy,
    MaskedDiagGaussianDistribution,
    evaluate,
    graph_spec_of,
    make_ppo,
    make_vec_env,
    summarize,
)

HOPPER = "equigym/Hopper3D-v0"
WALKERS = ["walker_7_full", "walker_3_left_leg_right_foot"]
TINY = {"gnn": {"hidden_dim": 16, "n_layers": 2}, "mlp": {"hidden_dim": 32}}


def test_masked_gaussian_ignores_masked_dims():
    mean = torch.tensor([[0.1, -0.2, 0.3, 0.0]])
    log_std = torch.tensor([[-0.5, 0.0, 0.5, 1.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    actions = torch.tensor([[0.4, 5.0, -0.3, 2.0]])
    dist = MaskedDiagGaussianDistribution(4).proba_distribution(mean, log_std, mask)
    lp, ent = dist.log_prob(actions), dist.entropy()
    normal = torch.distributions.Normal(mean, log_std.exp())
    assert torch.allclose(lp, normal.log_prob(actions)[:, [0, 2]].sum(-1))
    expected_entropy = sum(0.5 * math.log(2 * math.pi * math.e) + s for s in (-0.5, 0.5))
    assert torch.allclose(ent, torch.tensor([expected_entropy]))
    # Masked dims: neither the mean, the std, nor the action there matters.
    moved = mean.clone()
    moved[0, 1] += 3.0
    wider = log_std.clone()
    wider[0, 3] += 2.0
    dist2 = MaskedDiagGaussianDistribution(4).proba_distribution(moved, wider, mask)
    assert torch.equal(dist2.log_prob(actions), lp)
    assert torch.equal(dist2.entropy(), ent)
    # ...while a real dim does.
    moved[0, 0] += 0.1
    dist3 = MaskedDiagGaussianDistribution(4).proba_distribution(moved, log_std, mask)
    assert not torch.allclose(dist3.log_prob(actions), lp)


@pytest.fixture(scope="module")
def walker_venv():
    venv = make_vec_env("equigym/Walker3D-v0", n_envs=4, seed=3, morphologies=WALKERS)
    yield venv
    venv.close()


def test_multi_morphology_vec_env(walker_venv):
    venv = walker_venv
    assert venv.get_attr("morphology") == WALKERS * 2
    assert all(isinstance(e, Monitor) for e in venv.envs)
    spec = graph_spec_of(venv)
    assert spec.node_types[0].count == 7 and spec.action_dim == 21
    assert venv.observation_space["body/x"].shape == (7, 27)
    obs = venv.reset()
    real = obs["body/mask"].sum(axis=1)
    assert list(real) == [7, 3, 7, 3]
    # Same morphology, different seeds: different initial states.
    assert not np.allclose(obs["body/pos"][0], obs["body/pos"][2])
    assert (obs["action_mask"][1, 3 * 3 :] == 0).all()


def test_vec_env_seeding_is_reproducible():
    a = make_vec_env(HOPPER, n_envs=2, seed=11)
    b = make_vec_env(HOPPER, n_envs=2, seed=11)
    try:
        oa, ob = a.reset(), b.reset()
        assert all(np.array_equal(oa[k], ob[k]) for k in oa)
    finally:
        a.close()
        b.close()


def test_vec_env_bad_input():
    with pytest.raises(ValueError, match="Unknown env id 'equigym/Nope-v0'.*Hopper3D"):
        make_vec_env("equigym/Nope-v0", n_envs=1, seed=0)
    with pytest.raises(ValueError, match="vec_env"):
        make_vec_env(HOPPER, n_envs=1, seed=0, vec_env="ray")
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env(HOPPER, n_envs=0, seed=0)
    with pytest.warns(UserWarning, match="will not be used"):
        make_vec_env("equigym/Walker3D-v0", n_envs=1, seed=0, morphologies=WALKERS).close()


def test_graph_spec_of_rejects_other_envs():
    venv = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    with pytest.raises(ValueError, match="not an equigym env"):
        graph_spec_of(venv)
    venv.close()


def test_make_ppo_rejects_unknown_policy(walker_venv):
    with pytest.raises(ValueError, match="Unknown policy 'cnn'"):
        make_ppo(walker_venv, policy="cnn")
    with pytest.raises(ValueError, match="unknown option"):
        make_ppo(walker_venv, policy="gnn", policy_cfg={"widht": 3})


def test_policy_log_prob_ignores_padded_and_passive_dims(walker_venv):
    model = make_ppo(walker_venv, policy="gnn", policy_cfg=TINY["gnn"], n_steps=8, batch_size=8)
    policy = model.policy
    assert isinstance(policy, GraphActorCriticPolicy)
    assert isinstance(policy.action_net, torch.nn.Identity)
    assert not any(isinstance(m, torch.nn.Linear) for m in (policy.action_net, policy.value_net))
    obs, _ = policy.obs_to_tensor(walker_venv.reset())
    with torch.no_grad():
        actions, values, log_prob = policy(obs)
        assert values.shape == (4, 1) and log_prob.shape == (4,) and actions.shape == (4, 21)
        v2, lp2, ent = policy.evaluate_actions(obs, actions)
        assert torch.allclose(lp2, log_prob, atol=1e-5) and torch.allclose(v2, values)
        mask = obs["action_mask"] > 0.5
        changed = actions.clone()
        changed[~mask] += 10.0
        _, lp3, ent3 = policy.evaluate_actions(obs, changed)
        assert torch.equal(lp3, lp2) and torch.equal(ent3, ent)
        changed[mask] += 0.5
        assert not torch.allclose(policy.evaluate_actions(obs, changed)[1], lp2)
        # Entropy counts only the real (actuated) action dims of each morphology.
        per_dim = 0.5 * math.log(2 * math.pi * math.e) - 0.5
        assert torch.allclose(ent, mask.sum(-1).float() * per_dim, atol=1e-5)
        assert torch.allclose(policy.predict_values(obs), values)


@pytest.mark.parametrize("name", ["mlp", "gnn"])
def test_ppo_learn_changes_weights_and_round_trips(name, tmp_path):
    venv = make_vec_env(HOPPER, n_envs=2, seed=0)
    model = make_ppo(
        venv, policy=name, policy_cfg=TINY[name], n_steps=64, batch_size=32, n_epochs=2, seed=0
    )
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(128)
    assert model.num_timesteps == 128
    after = model.policy.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "net.log_std" in changed
    assert sum(k.startswith("net.") for k in changed) >= len(before) // 2

    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert isinstance(loaded.policy, GraphActorCriticPolicy)
    assert loaded.policy.policy_name == name and loaded.policy.graph_spec == graph_spec_of(venv)
    obs = venv.reset()
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    a3, _ = model.predict(obs, deterministic=False)
    assert not np.array_equal(a1, a3)
    venv.close()


def test_ppo_learns_on_padded_multi_morphology_batch(walker_venv):
    model = make_ppo(
        walker_venv, policy="gnn", policy_cfg=TINY["gnn"], n_steps=32, batch_size=64, n_epochs=1
    )
    model.learn(128)
    assert model.num_timesteps == 128
    results = evaluate(model, walker_venv, episodes_per_env=1)
    assert [len(r) for r in results] == [1, 1, 1, 1]
    summary = summarize([r[0] for r in results])
    assert summary["episodes"] == 4
    assert summary["mean_length"] == pytest.approx(np.mean([r[0]["length"] for r in results]))


def test_subproc_vec_env():
    venv = make_vec_env(HOPPER, n_envs=2, seed=0, vec_env="subproc")
    try:
        obs = venv.reset()
        assert obs["body/x"].shape == (2, 5, 27)
        obs, rewards, dones, infos = venv.step(np.zeros((2, 15), dtype=np.float32))
        assert rewards.shape == (2,) and graph_spec_of(venv).action_dim == 15
    finally:
        venv.close()


def test_log_std_init_and_policy_only_round_trip(walker_venv, tmp_path):
    model = make_ppo(
        walker_venv,
        policy="mlp",
        policy_cfg=TINY["mlp"],
        policy_kwargs={"log_std_init": -1.0},
        n_steps=8,
        batch_size=8,
    )
    policy = model.policy
    assert torch.equal(policy.log_std, torch.full_like(policy.log_std, -1.0))
    policy.save(tmp_path / "policy.pt")
    loaded = GraphActorCriticPolicy.load(tmp_path / "policy.pt", device="cpu")
    assert torch.equal(loaded.log_std, policy.log_std)
    obs = walker_venv.reset()
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], policy.predict(obs, deterministic=True)[0]
    )


def test_compile_option_keeps_the_saved_model_eager_compatible(tmp_path):
    # torch.compile is lazy: nothing compiles until the first call, so this test is cheap.
    venv = make_vec_env(HOPPER, n_envs=1, seed=0)
    compiled = make_ppo(venv, policy="gnn", policy_cfg=TINY["gnn"], n_steps=8, batch_size=8,
                        compile=True)  # fmt: skip
    eager = make_ppo(venv, policy="gnn", policy_cfg=TINY["gnn"], n_steps=8, batch_size=8)
    assert compiled.policy.compile and not eager.policy.compile
    assert compiled.policy._net_forward != compiled.policy.net.forward
    assert eager.policy._net_forward == eager.policy.net.forward
    assert list(compiled.policy.state_dict()) == list(eager.policy.state_dict())  # no _orig_mod
    compiled.save(tmp_path / "compiled.zip")
    assert PPO.load(tmp_path / "compiled.zip", device="cpu").policy.compile
    venv.close()


@pytest.mark.slow
def test_compiled_policy_trains_and_matches_eager(tmp_path):
    venv = make_vec_env(HOPPER, n_envs=2, seed=0)
    model = make_ppo(venv, policy="hepi", policy_cfg={"hidden_dim": 16, "vector_dim": 4},
                     n_steps=32, batch_size=32, n_epochs=1, compile=True)  # fmt: skip
    model.learn(64)
    obs = {k: torch.as_tensor(v) for k, v in venv.reset().items()}
    with torch.no_grad():
        for a, b in zip(model.policy._net_forward(obs), model.policy.net(obs), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    venv.close()

"""SET (subequivariant transformer): shapes, exact symmetry, masking, gradients, PPO smoke."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import TOY_EDGES, random_rollouts, random_rotation, rot_z, toy_batch, toy_spec

import equigym  # noqa: F401  (registers the ids)
from equigym import policies
from equigym.agents import make_ppo, make_vec_env
from equigym.graph import (
    ActionGroup,
    GraphSpec,
    stack,
    transform_action,
    transform_observation,
)
from equigym.policies.set import SETPolicy

LOCOMOTION = "equigym/Locomotion3D-v0"
WALKERS = ["walker_7_full", "walker_3_left_leg_right_foot", "walker_5_foot", "walker_6_right_foot"]
SMALL = {"hidden_dim": 32, "vector_dim": 8, "gram_dim": 6, "n_layers": 2, "n_heads": 2}
ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small batches gain nothing from threads, and on a busy machine every 2-thread parallel
    region can wait a scheduler slice (~16 ms): keep this module fast and predictable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- data -------------------------------------------------------------------------------------
def _torch(obs) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}


def _run(net, obs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with torch.no_grad():
        mean, log_std, value = net(_torch(obs))
    return mean.double().numpy(), log_std.double().numpy(), value.double().numpy()


@pytest.fixture(scope="module")
def datasets() -> dict[str, tuple[GraphSpec, dict[str, np.ndarray]]]:
    """Non-trivial observations (random actions) of several envs, and a padded walker batch."""
    out = {}
    for env_id in ("equigym/Hopper3D-v0", "equigym/Cheetah3D-v0", "equigym/Ant3D-v0"):
        env = gym.make(env_id)
        spec = env.unwrapped.graph_spec
        out[env_id.split("/")[1]] = (spec, random_rollouts([env], steps=4))
    envs = [gym.make(LOCOMOTION, morphology=m, max_nodes=7) for m in WALKERS]
    spec = envs[0].unwrapped.graph_spec
    out["walkers"] = (spec, random_rollouts(envs, steps=2))
    return out


def _toy_spec() -> GraphSpec:
    """Two node types, edge features, global scalars and every kind of action readout."""
    return toy_spec(
        (
            ActionGroup("arm", 1, "scalar", ("torque",), axis_channels=(1,)),
            ActionGroup("object", 3, "vector", ("fx", "fy", "fz"), offset=4),
            ActionGroup("arm", 1, "pseudoscalar", ("yaw_rate",), offset=13),
        ),
        edge_types=TOY_EDGES[:2],
    )


def _toy_batch(spec: GraphSpec, batch: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`toy_batch` with padded nodes zeroed, two real edges per type, every action on."""
    out = toy_batch(spec, batch, seed, zero_padded=("x", "pos", "vec"), real_edges=2)
    out["action_mask"][:] = 1.0
    return out


def _garbage_in_padding(spec: GraphSpec, obs: dict[str, np.ndarray], seed: int = 1):
    """Copy of ``obs`` with huge noise (and a NaN and an inf) on padded nodes and edges."""
    rng = np.random.default_rng(seed)
    out = {k: np.array(v, copy=True) for k, v in obs.items()}
    for n in spec.node_types:
        pad = out[f"{n.name}/mask"] < 0.5
        for part in ("x", "pos", "vec"):
            arr = out[f"{n.name}/{part}"]
            arr[pad] = 1e3 * rng.normal(size=arr[pad].shape)
        if pad.any():
            out[f"{n.name}/vec"][pad] = np.nan
            out[f"{n.name}/x"][pad] = np.inf
    for e in spec.edge_types:
        pad = out[f"{e.key}/mask"] < 0.5
        n_src, n_tgt = spec.node_type(e.source).count, spec.node_type(e.target).count
        idx = out[f"{e.key}/index"]
        idx[:, 0][pad] = rng.integers(0, n_src, idx[:, 0][pad].shape)
        idx[:, 1][pad] = rng.integers(0, n_tgt, idx[:, 1][pad].shape)
    return out


# --- shapes and layout ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Hopper3D-v0", "Cheetah3D-v0", "walkers"])
def test_output_shapes(name, datasets):
    spec, obs = datasets[name]
    torch.manual_seed(0)
    net = SETPolicy(spec)
    mean, log_std, value = net(_torch(obs))
    b = obs["action_mask"].shape[0]
    assert mean.shape == log_std.shape == (b, spec.action_dim)
    assert value.shape == (b,)
    for t in (mean, log_std, value):
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    assert torch.allclose(log_std, torch.full_like(log_std, -0.5))
    node_mask = net.action_node_mask(_torch(obs))
    assert torch.all(mean[node_mask < 0.5] == 0)
    assert mean[node_mask > 0.5].abs().sum() > 0
    # Torques are projections on hinge axes: an empty hinge slot (zero axis) gets exactly 0.
    axes = torch.as_tensor(obs["body/vec"][:, :, 3:6]).reshape(b, -1, 3)
    empty = axes.norm(dim=-1).reshape(b, -1) == 0
    assert torch.all(mean[empty] == 0)
    assert (mean.abs() < 1).all()  # tanh on invariant torques
    if name == "walkers":
        assert (obs["body/mask"] < 0.5).any(), "the walker batch should be padded"


def test_no_node_cap_and_padding_size_does_not_matter():
    """The same hopper states padded to 5 or to 20 nodes (> the reference's 15) agree."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (4, 15)).astype(np.float32)
    batches, specs = [], []
    for pad in (5, 20):
        env = gym.make(LOCOMOTION, morphology="hopper_5_full", max_nodes=pad)
        specs.append(env.unwrapped.graph_spec)
        obs = [env.reset(seed=3)[0]]
        for a in actions:  # the same torques; the padded slots get zeros
            obs.append(env.step(np.r_[a, np.zeros(3 * pad - 15, np.float32)])[0])
        env.close()
        batches.append(stack(obs))
    torch.manual_seed(0)
    net_small = SETPolicy(specs[0], **SMALL)
    net_big = SETPolicy(specs[1], **SMALL)
    net_big.load_state_dict(net_small.state_dict())
    m_s, _, v_s = _run(net_small, batches[0])
    m_b, _, v_b = _run(net_big, batches[1])
    assert m_b.shape[1] == 60
    np.testing.assert_allclose(m_b[:, :15], m_s, atol=1e-6)
    assert np.all(m_b[:, 15:] == 0)
    np.testing.assert_allclose(v_b, v_s, atol=1e-6)


def test_toy_spec_layout_and_isotropic_log_std():
    spec = _toy_spec()
    obs = _toy_batch(spec)
    net = SETPolicy(spec, **SMALL)
    mean, log_std, value = net(_torch(obs))
    assert mean.shape == log_std.shape == (6, 4 + 9 + 4) and value.shape == (6,)
    # One parameter per scalar channel, one per vector group (x, y, z share it).
    assert net.log_std.shape == (3,)
    with torch.no_grad():
        net.log_std.copy_(torch.tensor([0.0, 1.0, 2.0]))
    _, log_std, _ = net(_torch(obs))
    expected = torch.tensor([0.0] * 4 + [1.0] * 9 + [2.0] * 4)
    assert torch.equal(log_std[0], expected)


def test_rejects_bad_options(datasets):
    spec, _ = datasets["Hopper3D-v0"]
    with pytest.raises(ValueError, match="must divide"):
        SETPolicy(spec, hidden_dim=30, n_heads=4)
    with pytest.raises(ValueError, match="must divide"):
        SETPolicy(spec, vector_dim=6, n_heads=4)
    with pytest.raises(ValueError, match="activation"):
        SETPolicy(spec, activation="sigmoidish")


# --- symmetry ---------------------------------------------------------------------------------
def _max_errors(net, spec, obs, rot, t) -> dict[str, float]:
    mean, log_std, value = _run(net, obs)
    mean2, log_std2, value2 = _run(net, transform_observation(obs, spec, rot, t))
    return {
        "mean": float(np.abs(mean2 - transform_action(mean, spec, rot)).max()),
        "log_std": float(np.abs(log_std2 - log_std).max()),
        "value": float(np.abs(value2 - value).max()),
    }


@pytest.mark.parametrize("name", ["Hopper3D-v0", "Cheetah3D-v0", "Ant3D-v0", "walkers"])
def test_exact_subequivariance(name, datasets):
    """Rotation about gravity + translation: actions (scalars), log-std and value unchanged;
    a full rotation with gravity rotated too: also unchanged (E(3) with g as an input)."""
    spec, obs = datasets[name]
    torch.manual_seed(0)
    net = SETPolicy(spec).eval()  # the default width: 128, 3 layers, 2 heads
    rng = np.random.default_rng(7)
    for _ in range(3):
        about_g = (rot_z(rng.uniform(-np.pi, np.pi)), np.r_[rng.uniform(-5, 5, 2), 0.0])
        full = (random_rotation(rng), rng.uniform(-5, 5, 3))
        for rot, t in (about_g, full):
            errors = _max_errors(net, spec, obs, rot, t)
            assert max(errors.values()) <= ATOL, (name, errors)


@pytest.mark.parametrize("name", ["Cheetah3D-v0", "walkers"])
def test_tilt_with_gravity_fixed_changes_outputs(name, datasets):
    """Rotating the robot but not gravity is not a symmetry: the outputs must change."""
    spec, obs = datasets[name]
    torch.manual_seed(0)
    net = SETPolicy(spec).eval()
    tilt = random_rotation(np.random.default_rng(3))
    tilted = transform_observation(obs, spec, tilt)
    tilted["global/vec"][:, spec.gravity_channel] = obs["global/vec"][:, spec.gravity_channel]
    mean, _, value = _run(net, obs)
    mean2, _, value2 = _run(net, tilted)
    assert np.abs(mean2 - mean).max() > 1e-3
    assert np.abs(value2 - value).max() > 1e-3


def test_vector_actions_rotate_with_the_scene():
    """Synthetic spec: the vector action group rotates with R, scalar groups stay."""
    spec = _toy_spec()
    obs = _toy_batch(spec)
    torch.manual_seed(0)
    net = SETPolicy(spec, **SMALL).eval()
    mean = _run(net, obs)[0]
    obj = slice(4, 13)
    assert np.abs(mean[:, obj]).max() > 1e-3  # non-trivial vector output
    rng = np.random.default_rng(0)
    for _ in range(3):
        rot, t = random_rotation(rng), rng.uniform(-3, 3, 3)
        errors = _max_errors(net, spec, obs, rot, t)
        assert max(errors.values()) <= ATOL, errors
        # ...and the vector block did move (so the check above is not vacuous).
        moved = _run(net, transform_observation(obs, spec, rot, t))[0]
        assert np.abs(moved[:, obj] - mean[:, obj]).max() > 1e-4


# --- masking and batching ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["walkers", "toy"])
def test_garbage_in_padded_nodes_changes_nothing(name, datasets):
    if name == "toy":
        spec = _toy_spec()
        obs = _toy_batch(spec)
    else:
        spec, obs = datasets[name]
    torch.manual_seed(0)
    net = SETPolicy(spec, **SMALL)
    mean, log_std, value = _run(net, obs)
    mean2, log_std2, value2 = _run(net, _garbage_in_padding(spec, obs))
    np.testing.assert_allclose(mean2, mean, atol=1e-6)
    np.testing.assert_allclose(value2, value, atol=1e-6)
    np.testing.assert_array_equal(log_std2, log_std)
    # The same change on a real node does move the outputs.
    real = {k: np.array(v, copy=True) for k, v in obs.items()}
    first = spec.node_types[0].name
    real[f"{first}/x"][:, 0] += 1.0
    mean3, _, value3 = _run(net, real)
    assert np.abs(mean3 - mean).max() > 1e-4 and np.abs(value3 - value).max() > 1e-4


def test_samples_do_not_interact(datasets):
    spec, obs = datasets["walkers"]
    net = SETPolicy(spec, **SMALL)
    mean, _, value = _run(net, obs)
    for i in (0, 5, obs["action_mask"].shape[0] - 1):
        m_i, _, v_i = _run(net, {k: v[i : i + 1] for k, v in obs.items()})
        np.testing.assert_allclose(m_i[0], mean[i], atol=1e-5)
        np.testing.assert_allclose(v_i[0], value[i], atol=1e-5)


def test_graph_bias_reads_the_edges(datasets):
    spec, obs = datasets["walkers"]
    net = SETPolicy(spec, **SMALL)
    rewired = {k: np.array(v, copy=True) for k, v in obs.items()}
    for e in spec.edge_types:
        rewired[f"{e.key}/mask"][:] = 0.0
    assert np.abs(_run(net, rewired)[0] - _run(net, obs)[0]).max() > 1e-4


# --- training plumbing ------------------------------------------------------------------------
@pytest.mark.parametrize("share_encoder", [False, True])
def test_every_parameter_gets_a_gradient(share_encoder):
    spec = _toy_spec()
    net = SETPolicy(spec, share_encoder=share_encoder, **SMALL)
    mean, log_std, value = net(_torch(_toy_batch(spec)))
    (mean.square().sum() + log_std.sum() + value.sum()).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_gradients_finite_with_padding(datasets):
    """Zero (padded) vectors go through norms: their gradients must stay finite."""
    spec, obs = datasets["walkers"]
    net = SETPolicy(spec, **SMALL)
    mean, log_std, value = net(_torch(_garbage_in_padding(spec, obs)))
    (mean.square().sum() + value.square().sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_ppo_learn_smoke_changes_weights(monkeypatch, tmp_path):
    """SB3 PPO with SET (registered here through monkeypatch) trains and round-trips."""
    monkeypatch.setitem(policies.POLICIES, "set", SETPolicy)
    venv = make_vec_env("equigym/Hopper3D-v0", n_envs=2, seed=0)
    model = make_ppo(
        venv, policy="set", policy_cfg=SMALL, n_steps=32, batch_size=32, n_epochs=2, seed=0
    )
    assert isinstance(model.policy.net, SETPolicy)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(64)
    after = model.policy.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("net.actor.") for k in changed)
    assert any(k.startswith("net.critic.") for k in changed)
    assert "net.log_std" in changed
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "set_ppo")
    loaded = type(model).load(tmp_path / "set_ppo", env=venv)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], action, atol=1e-6)
    venv.close()

"""Equivariant vector layers and the HEPi, EMPN and Transformer policies.

Equivariance is checked through the spec's geometric types (``transform_observation`` /
``transform_action``), on real locomotion observations (single and padded multi-morphology
batches) and on a made-up spec with two node types, three edge types and a vector action.
"""

import dataclasses
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import (  # noqa: E402
    assert_equivariant,
    random_rollouts,
    random_rotation,
    rot_z,
    toy_batch,
    toy_counts,
    toy_spec,
)
from stable_baselines3 import PPO  # noqa: E402

import equigym  # noqa: E402,F401
from equigym import policies  # noqa: E402
from equigym.agents import make_ppo, make_vec_env  # noqa: E402
from equigym.graph import (  # noqa: E402
    ActionGroup,
    GraphSpec,
    transform_action,
    transform_observation,
)
from equigym.policies.empn import EMPNPolicy  # noqa: E402
from equigym.policies.equivariance import equivariance_error  # noqa: E402
from equigym.policies.hepi import (  # noqa: E402
    DeepSetsCritic,
    HEPiPolicy,
    PonitaEncoder,
    default_rounds,
)
from equigym.policies.layers import (  # noqa: E402
    EquivariantVectorConv,
    EquivariantVectorLayer,
    VectorLinear,
)
from equigym.policies.transformer import TransformerPolicy  # noqa: E402

CLASSES = {"hepi": HEPiPolicy, "empn": EMPNPolicy, "transformer": TransformerPolicy}
EQUIVARIANT = ["hepi", "empn"]
SMALL = {
    "hepi": {"hidden_dim": 32, "vector_dim": 8, "n_layers": 2},
    "empn": {"hidden_dim": 32, "vector_dim": 8, "n_layers": 2},
    "transformer": {"d_model": 32},
}
WALKERS = [
    "walker_7_full",
    "walker_3_left_leg_right_foot",
    "walker_5_foot",
    "walker_2_right_leg_left_knee",
]
ATOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny batches gain nothing from 2 threads, and on a shared, busy CPU OpenMP's waits for a
    descheduled thread made single ops take milliseconds (tests ran 3x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net(name, spec, seed=0, **cfg):
    torch.manual_seed(seed)
    return CLASSES[name](spec, **{**SMALL[name], **cfg})


def _torch(obs):
    return {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in obs.items()}


def _outputs(net, obs):
    """(mean, log_std, value) as float64 numpy arrays for a numpy observation batch."""
    with torch.no_grad():
        return tuple(t.double().numpy() for t in net(_torch(obs)))


def _collect(envs, steps=3, seed=0):
    """Spec and numpy batch of a few random-action steps of each env (resets left out)."""
    spec = envs[0].unwrapped.graph_spec
    return spec, random_rollouts(envs, steps, seed, include_reset=False)


@pytest.fixture(scope="module")
def hopper():
    return _collect([gym.make("equigym/Hopper3D-v0")])


@pytest.fixture(scope="module")
def cheetah():
    return _collect([gym.make("equigym/Cheetah3D-v0")], steps=2)


@pytest.fixture(scope="module")
def walkers():
    """Four walker morphologies padded to 7 nodes (real padding in nodes and edges)."""
    envs = [gym.make("equigym/Locomotion3D-v0", morphology=m, max_nodes=7) for m in WALKERS]
    return _collect(envs, steps=2)


def _toy_spec() -> GraphSpec:
    """Two node types, three edge types (one with features), every kind of action group."""
    return toy_spec((
        ActionGroup("arm", 1, "scalar", ("torque",), axis_channels=(1,)),
        ActionGroup("arm", 1, "scalar", ("grip",), offset=4),
        ActionGroup("object", 3, "vector", ("fx", "fy", "fz"), offset=8),
    ))  # fmt: skip


def _toy_batch(spec: GraphSpec, batch: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`toy_batch` with padded positions zeroed; torques of real arms and forces on real
    objects marked in ``action_mask`` (grips stay masked)."""
    out = toy_batch(spec, batch, seed, zero_padded=("pos",))
    for b in range(batch):
        counts = toy_counts(b)
        out["action_mask"][b] = 0.0
        out["action_mask"][b, : counts["arm"]] = 1.0
        out["action_mask"][b, 8 : 8 + 3 * counts["object"]] = 1.0
    return out


def _garbage_in_padding(spec, obs, seed=1):
    """Copy of ``obs`` with huge or NaN values in padded nodes and random padded edges."""
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in obs.items()}
    for n in spec.node_types:
        pad = out[f"{n.name}/mask"] < 0.5
        for key in ("x", "pos", "vec"):
            arr = out[f"{n.name}/{key}"]
            arr[pad] = 1e3 * rng.normal(size=arr[pad].shape)
        out[f"{n.name}/x"][pad] = np.nan
    for e in spec.edge_types:
        pad = out[f"{e.key}/mask"] < 0.5
        n_src, n_tgt = spec.node_type(e.source).count, spec.node_type(e.target).count
        idx = out[f"{e.key}/index"]
        idx[:, 0][pad] = rng.integers(0, n_src, pad.sum())
        idx[:, 1][pad] = rng.integers(0, n_tgt, pad.sum())
        if f"{e.key}/attr" in out:
            out[f"{e.key}/attr"][pad] = np.nan
    return out


def _rotate(vec, rot):
    """Rotate xyz-major (M, 3, K) vector channels."""
    return torch.einsum("ij,mjk->mik", torch.as_tensor(rot, dtype=vec.dtype), vec)


# --- the layers on a hand-built graph (PyG style) ----------------------------------------------
def _tiny_graph(seed=0, c=8, k=4, f=2):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(4, c, generator=gen)
    vec = torch.randn(4, 3, k, generator=gen)
    pos = torch.randn(4, 3, generator=gen)
    edge_index = torch.tensor([[0, 1, 2, 3, 2], [1, 2, 3, 1, 0]])
    edge_attr = torch.randn(5, f, generator=gen)
    return h, vec, pos, edge_index, edge_attr


def test_layer_shapes_on_tiny_graph():
    h, vec, pos, edge_index, edge_attr = _tiny_graph()
    torch.manual_seed(0)
    layer = EquivariantVectorLayer(8, 4, edge_dim=2)
    h2, vec2 = layer(h, vec, pos, edge_index, edge_attr=edge_attr)
    assert h2.shape == (4, 8) and vec2.shape == (4, 3, 4)
    assert torch.isfinite(h2).all() and torch.isfinite(vec2).all()
    # Mean aggregation by default: node 1 has two in-edges, each weighted 1/2.
    weight = torch.tensor([0.5, 1.0, 1.0, 0.5, 1.0])
    m_h, m_vec = layer.conv(h, vec, pos, edge_index, weight, edge_attr)
    assert torch.allclose(layer.update(h, vec, m_h, m_vec)[0], h2)
    # A bipartite call: 4 sources, 2 targets.
    conv = EquivariantVectorConv(8, 4)
    index = torch.tensor([[0, 1, 3], [0, 1, 1]])
    m_h, m_vec = conv((h, h[:2]), (vec, vec[:2]), (pos, pos[:2]), index, torch.ones(3))
    assert m_h.shape == (2, 8) and m_vec.shape == (2, 3, 4)
    assert VectorLinear(4, 6)(vec).shape == (4, 3, 6)


@pytest.mark.parametrize("proper", [True, False])
def test_layer_is_e3_equivariant(proper):
    h, vec, pos, edge_index, edge_attr = _tiny_graph(seed=1)
    torch.manual_seed(0)
    layers = [EquivariantVectorLayer(8, 4, edge_dim=2) for _ in range(3)]
    rng = np.random.default_rng(0)

    def run(v, p):
        out_h, out_v = h, v
        for layer in layers:
            out_h, out_v = layer(out_h, out_v, p, edge_index, edge_attr=edge_attr)
        return out_h, out_v

    h_ref, v_ref = run(vec, pos)
    for _ in range(3):
        rot = random_rotation(rng, proper=proper)
        shift = torch.as_tensor(rng.uniform(-5, 5, 3), dtype=torch.float32)
        h_rot, v_rot = run(_rotate(vec, rot), pos @ torch.as_tensor(rot.T).float() + shift)
        assert (h_rot - h_ref).abs().max() <= ATOL
        # float32 rounding grows with magnitude (|V| reaches ~20 here): relative to max |V|.
        scale = max(1.0, v_ref.abs().max().item())
        assert (v_rot - _rotate(v_ref, rot)).abs().max() <= ATOL * scale
    # The check can fail: rotating the vectors but not the positions changes the output.
    h_bad, _ = run(_rotate(vec, rot), pos)
    assert (h_bad - h_ref).abs().max() > 1e-3


# --- policies on real locomotion observations ----------------------------------------------------
def _invariant_check(net, spec, obs, transforms):
    """Largest change of mean, log_std and value over ``transforms`` (all must be invariant)."""
    errors = []
    for out in range(3):

        def fn(o, out=out):
            return _outputs(net, o)[out]

        errors.append(assert_equivariant(fn, obs, spec, transforms, output="invariant", atol=ATOL))
    return max(errors)


@pytest.mark.parametrize("name", EQUIVARIANT)
@pytest.mark.parametrize("data", ["hopper", "cheetah", "walkers"])
def test_locomotion_outputs_invariant_under_rotations(name, data, request):
    """Rotation about gravity + translation, and any rotation with gravity rotated too."""
    spec, obs = request.getfixturevalue(data)
    net = _net(name, spec)
    rng = np.random.default_rng(3)
    about_z = [(rot_z(rng.uniform(-np.pi, np.pi)), rng.uniform(-4, 4, 3)) for _ in range(2)]
    full = [(random_rotation(rng), rng.uniform(-4, 4, 3)) for _ in range(2)]
    err = _invariant_check(net, spec, obs, about_z + full)
    print(f"{name} on {data}: max equivariance error {err:.2e}")
    # Tilting the robot while gravity stays put is a different state: outputs must change.
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(0.5), -np.sin(0.5)], [0.0, np.sin(0.5), 0.0]])
    tilt[2, 2] = np.cos(0.5)
    tilted = transform_observation(obs, spec, tilt)
    tilted["global/vec"] = obs["global/vec"]
    mean, _, value = _outputs(net, obs)
    mean_t, _, value_t = _outputs(net, tilted)
    assert np.abs(mean_t - mean).max() > 1e-4 and np.abs(value_t - value).max() > 1e-4


def test_default_size_hepi_is_exact_on_cheetah(cheetah):
    spec, obs = cheetah
    torch.manual_seed(0)
    net = HEPiPolicy(spec)  # default widths and rounds
    rng = np.random.default_rng(4)
    err = _invariant_check(net, spec, obs, [(random_rotation(rng), rng.uniform(-9, 9, 3))])
    assert err <= ATOL


@pytest.mark.parametrize("name", [*EQUIVARIANT, "transformer"])
@pytest.mark.parametrize("data", ["walkers", "toy"])
def test_padding_garbage_changes_nothing(name, data, request):
    if data == "toy":
        spec = _toy_spec()
        obs = _toy_batch(spec)
    else:
        spec, obs = request.getfixturevalue(data)
    net = _net(name, spec)
    mean, log_std, value = _outputs(net, obs)
    mean2, log_std2, value2 = _outputs(net, _garbage_in_padding(spec, obs))
    np.testing.assert_allclose(mean2, mean, atol=1e-6)
    np.testing.assert_allclose(value2, value, atol=1e-6)
    np.testing.assert_array_equal(log_std2, log_std)
    node_mask = net.action_node_mask(_torch(obs)).numpy()
    assert np.all(mean[node_mask < 0.5] == 0) and np.abs(mean[node_mask > 0.5]).sum() > 0


# --- a made-up heterogeneous spec with a vector action ---------------------------------------
@pytest.mark.parametrize("name", EQUIVARIANT)
def test_vector_actions_rotate_with_the_scene(name):
    spec = _toy_spec()
    obs = _toy_batch(spec)
    net = _net(name, spec)
    rng = np.random.default_rng(5)
    transforms = [(random_rotation(rng), rng.uniform(-3, 3, 3)) for _ in range(3)]
    err = assert_equivariant(
        lambda o: _outputs(net, o)[0], obs, spec, transforms, output="action", atol=ATOL
    )
    err = max(err, _invariant_check_value_std(net, spec, obs, transforms))
    print(f"{name} on the toy spec: max equivariance error {err:.2e}")
    # The vector block really rotates (it is not zero, and differs from the unrotated mean).
    mean = _outputs(net, obs)[0]
    rot = transforms[0][0]
    rotated = _outputs(net, transform_observation(obs, spec, rot, transforms[0][1]))[0]
    assert np.abs(mean[:, 8:]).max() > 1e-4
    assert np.abs(rotated[:, 8:] - mean[:, 8:]).max() > 1e-4
    np.testing.assert_allclose(rotated, transform_action(mean, spec, rot), atol=ATOL)


def _invariant_check_value_std(net, spec, obs, transforms):
    errors = [
        assert_equivariant(
            lambda o, i=i: _outputs(net, o)[i], obs, spec, transforms, "invariant", ATOL
        )
        for i in (1, 2)
    ]
    return max(errors)


def test_hepi_rounds_and_options():
    spec = _toy_spec()
    obs = _toy_batch(spec)
    schedule = [["arm-link-arm"], ["arm-touches-object", "object-touched_by-arm"]]
    net = _net("hepi", spec, rounds=schedule)
    assert net.rounds == (("arm-link-arm",), ("arm-touches-object", "object-touched_by-arm"))
    assert list(net.actor.convs[0]) == ["arm-link-arm"] and list(net.actor.updates[0]) == ["arm"]
    assert set(net.actor.updates[1]) == {"object", "arm"}
    rng = np.random.default_rng(6)
    assert_equivariant(
        lambda o: _outputs(net, o)[0], obs, spec, [(random_rotation(rng), np.ones(3))]
    )
    assert not np.allclose(_outputs(net, obs)[0], _outputs(_net("hepi", spec), obs)[0])
    with pytest.raises(ValueError, match="unknown: \\['arm-nope-arm'\\]"):
        HEPiPolicy(spec, rounds=[["arm-nope-arm"]])
    with pytest.raises(ValueError, match="list of edge-type keys"):
        HEPiPolicy(spec, rounds=["arm-link-arm"])
    with pytest.raises(ValueError, match="Unknown backbone"):
        HEPiPolicy(spec, backbone="e3nn")
    # EMPN: one shared convolution per round over the union of all edge types.
    empn = _net("empn", spec)
    assert len(empn.actor.convs) == 2 and isinstance(empn.actor.convs[0], EquivariantVectorConv)
    assert empn.actor.convs[0].edge_dim == 2


def test_encoders_build_only_what_outputs_read():
    """An actor acting on arms only skips the last round's messages into objects; the critic
    (scalars only) does not update vectors in its last round; every parameter still learns."""
    torque = ActionGroup("arm", 1, "scalar", ("torque",), axis_channels=(1,))
    spec = dataclasses.replace(_toy_spec(), actions=(torque,))
    obs = _toy_batch(spec)
    every = [[e.key for e in spec.edge_types]] * 2  # every edge type in both rounds
    net = _net("hepi", spec, rounds=every)
    assert net.actor.plan[0].updates == {"arm": True, "object": True}
    assert net.actor.plan[-1].convs == ("arm-link-arm", "object-touched_by-arm")
    assert net.actor.plan[-1].updates == {"arm": True}
    assert net.critic.plan[-1].updates == {"arm": False, "object": False}
    mean, log_std, value = net(_torch(obs))
    (mean.square().sum() + log_std.sum() + value.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    shared = _net("hepi", spec, share_encoder=True, rounds=every)
    assert shared.actor is shared.critic and shared.actor.plan[-1].updates == {
        "arm": True,
        "object": False,
    }


def test_default_rounds_follow_the_reference_schedule():
    """Messages among non-acted nodes first, into the acted-on nodes last (HEPi's manipulation
    schedule); all edge types in every round when every edge ends at an acted-on node."""
    torque = ActionGroup("arm", 1, "scalar", ("torque",), axis_channels=(1,))
    spec = dataclasses.replace(_toy_spec(), actions=(torque,))
    assert default_rounds(spec, 3) == (
        ("arm-touches-object",), ("arm-touches-object",), ("arm-link-arm", "object-touched_by-arm")
    )
    assert default_rounds(spec, 1) == (tuple(e.key for e in spec.edge_types),)
    # Actions on both node types: every edge ends at an acted-on node.
    both = _toy_spec()
    assert default_rounds(both, 2) == (tuple(e.key for e in both.edge_types),) * 2
    assert _net("hepi", spec, n_layers=3).rounds == default_rounds(spec, 3)


def test_log_std_is_isotropic_for_vector_groups():
    spec = _toy_spec()
    net = _net("hepi", spec)
    # One parameter per scalar channel (torque, grip) and one for the whole vector group.
    assert net.log_std.shape == (3,)
    with torch.no_grad():
        net.log_std.copy_(torch.tensor([0.0, 1.0, 2.0]))
    log_std = net(_torch(_toy_batch(spec)))[1]
    expected = torch.tensor([0.0] * 4 + [1.0] * 4 + [2.0] * 9)
    assert torch.equal(log_std[0], expected)


# --- the non-equivariant Transformer baseline ----------------------------------------------
def test_transformer_shapes_masking_and_reported_error(walkers):
    spec, obs = walkers
    net = _net("transformer", spec)
    mean, log_std, value = _outputs(net, obs)
    b = len(value)
    assert mean.shape == log_std.shape == (b, spec.action_dim) and value.shape == (b,)
    rng = np.random.default_rng(7)
    transformed = transform_observation(obs, spec, random_rotation(rng), rng.uniform(-3, 3, 3))
    mean2, _, value2 = _outputs(net, transformed)
    err = max(np.abs(mean2 - mean).max(), np.abs(value2 - value).max())
    print(f"transformer (not equivariant) on walkers: equivariance error {err:.2e}")
    assert np.isfinite(err)


# --- training plumbing -------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*EQUIVARIANT, "transformer"])
def test_every_parameter_gets_a_gradient(name):
    spec = _toy_spec()
    net = _net(name, spec)
    mean, log_std, value = net(_torch(_toy_batch(spec)))
    (mean.square().sum() + log_std.sum() + value.sum()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize("name", [*EQUIVARIANT, "transformer"])
def test_ppo_learn_smoke(name, monkeypatch, tmp_path):
    monkeypatch.setitem(policies.POLICIES, name, CLASSES[name])
    venv = make_vec_env("equigym/Hopper3D-v0", n_envs=2, seed=0)
    try:
        model = make_ppo(
            venv, policy=name, policy_cfg=SMALL[name], n_steps=32, batch_size=32, n_epochs=1,
            seed=0,
        )  # fmt: skip
        before = {k: v.clone() for k, v in model.policy.state_dict().items()}
        model.learn(64)
        after = model.policy.state_dict()
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert "net.log_std" in changed
        assert sum(k.startswith("net.") for k in changed) >= len(before) // 2
        if name == "hepi":
            model.save(tmp_path / "model.zip")
            loaded = PPO.load(tmp_path / "model.zip", device="cpu")
            obs = venv.reset()
            np.testing.assert_array_equal(
                model.predict(obs, deterministic=True)[0],
                loaded.predict(obs, deterministic=True)[0],
            )
    finally:
        venv.close()


# --- PONITA backbone --------------------------------------------------------------------------
def _ponita(spec, n_orientations=16, **cfg):
    torch.manual_seed(0)
    net = HEPiPolicy(spec, backbone="ponita", n_orientations=n_orientations,
                     **{**SMALL["hepi"], **cfg})
    for head in net.heads:  # read-outs at gain 1, so that errors are measured on real outputs
        if isinstance(head, VectorLinear):
            head.reset_parameters(gain=1.0)
    return net.eval()


def test_ponita_backbone_shapes_masking_and_gradients():
    spec = _toy_spec()
    obs = _toy_batch(spec)
    net = _ponita(spec)
    assert isinstance(net.actor, PonitaEncoder) and net.actor.grid.shape == (16, 3)
    np.testing.assert_allclose(net.actor.grid.norm(dim=-1).numpy(), 1.0, atol=1e-6)
    mean, log_std, value = net(_torch(obs))
    assert mean.shape == (5, spec.action_dim) and value.shape == (5,)
    # Padded nodes: garbage in their slots changes nothing.
    noisy = {k: v.copy() for k, v in obs.items()}
    for t in ("arm", "object"):
        pad = noisy[f"{t}/mask"] < 0.5
        noisy[f"{t}/vec"][pad] = 1e3
        noisy[f"{t}/pos"][pad] = -1e3
    np.testing.assert_allclose(_outputs(net, noisy)[0], _outputs(net, obs)[0], atol=1e-5)
    net.train()
    mean, log_std, value = net(_torch(obs))
    (mean.square().sum() + log_std.sum() + value.sum()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, missing
    with pytest.raises(ValueError, match="n_orientations"):
        HEPiPolicy(spec, backbone="ponita", n_orientations=0)
    with pytest.raises(ValueError, match="vector_dim <= hidden_dim"):
        HEPiPolicy(spec, backbone="ponita", hidden_dim=8, vector_dim=16)


def test_ponita_is_translation_invariant_and_equivariant_up_to_its_grid():
    """Exact under translations; under rotations the error shrinks as the grid gets finer."""
    spec = _toy_spec()
    obs = _toy_batch(spec)
    rng = np.random.default_rng(3)
    shifts = [(np.eye(3), rng.uniform(-3, 3, 3)) for _ in range(3)]
    rotations = [(random_rotation(rng), rng.uniform(-3, 3, 3)) for _ in range(3)]
    relative = {}
    for n in (4, 16, 256):
        net = _ponita(spec, n)
        assert_equivariant(lambda o, net=net: _outputs(net, o)[0], obs, spec, shifts)
        scale = np.abs(_outputs(net, obs)[0]).max()
        err = equivariance_error(net, obs, spec, rotations)["mean"]
        relative[n] = err / scale
    assert relative[256] < relative[16] < relative[4], relative
    assert relative[16] < 0.25 and relative[256] < 0.02, relative


def test_deepsets_critic_is_invariant_cheaper_and_learns():
    spec = _toy_spec()
    obs = _toy_batch(spec)
    net = _net("hepi", spec, critic="deepsets")
    full = _net("hepi", spec)
    assert isinstance(net.critic, DeepSetsCritic) and net.actor is not net.critic
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in full.parameters())
    rng = np.random.default_rng(5)
    transforms = [(random_rotation(rng), rng.uniform(-3, 3, 3)) for _ in range(3)]
    assert_equivariant(lambda o: _outputs(net, o)[2], obs, spec, transforms, output="invariant",
                       atol=ATOL)
    assert_equivariant(lambda o: _outputs(net, o)[0], obs, spec, transforms, atol=ATOL)
    mean, log_std, value = net(_torch(obs))
    (mean.square().sum() + log_std.sum() + value.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with pytest.raises(ValueError, match="Unknown critic"):
        HEPiPolicy(spec, critic="gru")
    with pytest.raises(ValueError, match="cannot be combined"):
        HEPiPolicy(spec, critic="deepsets", share_encoder=True)

"""Graph policies: factory, shapes, padding invariance, batching, genericity over specs."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import random_rollouts, toy_batch, toy_counts, toy_spec  # noqa: E402

import equigym  # noqa: E402,F401
from equigym import policies  # noqa: E402
from equigym.envs.locomotion import max_nodes  # noqa: E402
from equigym.graph import ActionGroup, GraphSpec  # noqa: E402

NAMES = sorted(policies.POLICIES)
SMALL = {
    "mlp": {"hidden_dim": 32},
    "gnn": {"hidden_dim": 16, "n_layers": 2},
    "transformer": {"d_model": 16, "n_layers": 1},
    "hepi": {"hidden_dim": 16, "n_layers": 2},
    "empn": {"hidden_dim": 16, "n_layers": 2},
    "set": {"hidden_dim": 32, "n_layers": 1, "vector_dim": 8, "gram_dim": 4},
}
WALKERS = [
    "walker_7_full",
    "walker_3_left_leg_right_foot",
    "walker_5_foot",
    "walker_2_right_leg_left_knee",
]


def _collect(envs, steps=3, seed=0):
    """A few observations from each env (reset plus random steps), stacked as torch tensors."""
    return {k: torch.as_tensor(v) for k, v in random_rollouts(envs, steps, seed).items()}


@pytest.fixture(scope="module")
def hopper():
    env = gym.make("equigym/Hopper3D-v0")
    spec = env.unwrapped.graph_spec
    batch = _collect([env])
    env.close()
    return spec, batch


@pytest.fixture(scope="module")
def walkers():
    """A padded multi-morphology batch: four walkers padded to 7 nodes."""
    n = max_nodes(WALKERS)
    envs = [gym.make("equigym/Walker3D-v0", morphology=m, max_nodes=n) for m in WALKERS]
    spec = envs[0].unwrapped.graph_spec
    batch = _collect(envs, steps=1)
    for env in envs:
        env.close()
    return spec, batch


def _toy_spec() -> GraphSpec:
    """Two node types, edge features, global scalars, a scalar and a vector action group."""
    return toy_spec((
        ActionGroup("arm", 1, "scalar", ("torque",)),
        ActionGroup("object", 3, "vector", ("fx", "fy", "fz"), offset=4),
    ))  # fmt: skip


def _toy_batch(spec: GraphSpec, batch: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`toy_batch` (torch) with the actions of real arms and objects marked."""
    out = toy_batch(spec, batch, seed)
    for b in range(batch):
        counts = toy_counts(b)
        out["action_mask"][b] = 0.0
        out["action_mask"][b, : counts["arm"]] = 1.0
        out["action_mask"][b, 4 : 4 + 3 * counts["object"]] = 1.0
    return {k: torch.as_tensor(v) for k, v in out.items()}


def _perturb_padding(spec, batch, seed=1):
    """Copy of ``batch`` with random (large) features on every padded node and padded edge."""
    gen = torch.Generator().manual_seed(seed)
    out = {k: v.clone() for k, v in batch.items()}
    for n in spec.node_types:
        pad = out[f"{n.name}/mask"] < 0.5
        for key in ("x", "pos", "vec"):
            t = out[f"{n.name}/{key}"]
            noise = 100.0 * torch.randn(t.shape, generator=gen)
            t[pad] = noise[pad]
    for e in spec.edge_types:
        pad = out[f"{e.key}/mask"] < 0.5
        idx = out[f"{e.key}/index"]
        n_src, n_tgt = spec.node_type(e.source).count, spec.node_type(e.target).count
        src = torch.randint(0, n_src, idx[:, 0].shape, generator=gen).float()
        tgt = torch.randint(0, n_tgt, idx[:, 1].shape, generator=gen).float()
        idx[:, 0][pad] = src[pad]
        idx[:, 1][pad] = tgt[pad]
        if f"{e.key}/attr" in out:
            out[f"{e.key}/attr"][pad] = 50.0 * torch.randn(out[f"{e.key}/attr"][pad].shape)
    return out


def test_make_rejects_unknown_name(hopper):
    spec, _ = hopper
    with pytest.raises(ValueError, match="Unknown policy 'ponita_xl'") as err:
        policies.make("ponita_xl", spec)
    for name in NAMES:
        assert name in str(err.value)


def test_make_rejects_unknown_option(hopper):
    spec, _ = hopper
    with pytest.raises(ValueError, match="hidden_size") as err:
        policies.make("gnn", spec, hidden_size=3)
    assert "hidden_dim" in str(err.value)
    with pytest.raises(ValueError, match="activation"):
        policies.make("mlp", spec, activation="sigmoidish")


def test_registry_names():
    assert set(NAMES) == {"mlp", "gnn", "transformer", "hepi", "empn", "set"}
    assert policies.EQUIVARIANT == {"hepi", "empn", "set"}
    for name, cls in policies.POLICIES.items():
        assert issubclass(cls, policies.GraphPolicy)
        # The first docstring line states the symmetry (or its absence).
        baseline = name not in policies.EQUIVARIANT
        assert cls.__doc__.startswith("Not equivariant:") == baseline, name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("data", ["hopper", "walkers"])
def test_output_shapes(name, data, request):
    spec, batch = request.getfixturevalue(data)
    net = policies.make(name, spec, **SMALL[name])
    mean, log_std, value = net(batch)
    b = batch["action_mask"].shape[0]
    assert mean.shape == log_std.shape == (b, spec.action_dim)
    assert value.shape == (b,)
    for t in (mean, log_std, value):
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    assert torch.allclose(log_std, torch.full_like(log_std, -0.5))
    # Real actuated nodes get non-trivial means; padded nodes exactly zero.
    node_mask = net.action_node_mask(batch)
    assert torch.all(mean[node_mask < 0.5] == 0)
    assert mean[node_mask > 0.5].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("data", ["walkers", "toy"])
def test_padded_nodes_do_not_change_outputs(name, data, request):
    if data == "toy":
        spec = _toy_spec()
        batch = _toy_batch(spec)
    else:
        spec, batch = request.getfixturevalue(data)
    assert any((batch[f"{n.name}/mask"] < 0.5).any() for n in spec.node_types), "no padding"
    net = policies.make(name, spec, **SMALL[name])
    with torch.no_grad():
        mean, log_std, value = net(batch)
        mean2, log_std2, value2 = net(_perturb_padding(spec, batch))
        assert torch.allclose(mean, mean2, atol=1e-6)
        assert torch.allclose(value, value2, atol=1e-6)
        assert torch.equal(log_std, log_std2)
        # The check is meaningful: the same perturbation on a real node does change outputs.
        real = {k: v.clone() for k, v in batch.items()}
        first = spec.node_types[0].name
        real[f"{first}/x"][:, 0] += 1.0
        mean3, _, value3 = net(real)
        assert not torch.allclose(mean, mean3, atol=1e-4)
        assert not torch.allclose(value, value3, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_samples_do_not_interact(name, walkers):
    """Flattened (B*N) message passing must not leak between samples of a batch."""
    spec, batch = walkers
    net = policies.make(name, spec, **SMALL[name])
    with torch.no_grad():
        mean, _, value = net(batch)
        for i in (0, 3, batch["action_mask"].shape[0] - 1):
            m_i, _, v_i = net({k: v[i : i + 1] for k, v in batch.items()})
            assert torch.allclose(m_i[0], mean[i], atol=1e-5)
            assert torch.allclose(v_i[0], value[i], atol=1e-5)


def test_gnn_is_node_permutation_equivariant(walkers):
    """Relabelling nodes (and remapping edges) permutes per-node action means, keeps the value."""
    spec, batch = walkers
    net = policies.make("gnn", spec, hidden_dim=16, n_layers=3)
    n = spec.node_types[0].count
    # New slot j holds old node perm[j]; an old index i becomes inv[i].
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    inv = torch.argsort(perm)
    permuted = dict(batch)
    for key in ("body/x", "body/pos", "body/vec", "body/mask"):
        permuted[key] = batch[key][:, perm]
    for e in spec.edge_types:
        permuted[f"{e.key}/index"] = inv[batch[f"{e.key}/index"].long()].float()
    with torch.no_grad():
        mean, _, value = net(batch)
        mean_p, _, value_p = net(permuted)
    per_node = spec.actions[0].per_node
    b = mean.shape[0]
    expected = mean.reshape(b, n, per_node)[:, perm].reshape(b, -1)
    assert torch.allclose(mean_p, expected, atol=1e-5)
    assert torch.allclose(value_p, value, atol=1e-5)


def test_gnn_reads_the_edges(walkers):
    spec, batch = walkers
    net = policies.make("gnn", spec, hidden_dim=16, n_layers=2)
    rewired = {k: v.clone() for k, v in batch.items()}
    rewired["body-parent_to_child-body/mask"][:] = 0.0
    rewired["body-child_to_parent-body/mask"][:] = 0.0
    with torch.no_grad():
        assert not torch.allclose(net(batch)[0], net(rewired)[0], atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_toy_spec_shapes_and_layout(name):
    """Several node types, edge features, global scalars, and a vector action group."""
    spec = _toy_spec()
    batch = _toy_batch(spec)
    net = policies.make(name, spec, **SMALL[name])
    mean, log_std, value = net(batch)
    assert mean.shape == log_std.shape == (5, spec.action_dim) == (5, 4 + 9)
    assert value.shape == (5,)
    if name in policies.EQUIVARIANT:
        # Isotropic: one log-std for the scalar group, one shared by x, y, z of the vector group
        # (a per-axis std would not rotate with the scene).
        assert net.log_std.shape == (2,)
        with torch.no_grad():
            net.log_std.copy_(torch.tensor([0.0, 1.0]))
        _, log_std, _ = net(batch)
        assert torch.equal(log_std[0, :4], torch.zeros(4))
        assert torch.equal(log_std[0, 4:], torch.ones(9))
        return
    # Baselines: one log-std parameter per (group, channel): 1 + 3.
    assert net.log_std.shape == (4,)
    with torch.no_grad():
        net.log_std.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    _, log_std, _ = net(batch)
    assert torch.equal(log_std[0, :4], torch.zeros(4))
    assert torch.equal(log_std[0, 4:], torch.tensor([1.0, 2.0, 3.0]).repeat(3))


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name):
    spec = _toy_spec()
    net = policies.make(name, spec, **SMALL[name])
    mean, log_std, value = net(_toy_batch(spec))
    (mean.square().sum() + log_std.sum() + value.sum()).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_reset_parameters(name, hopper):
    spec, batch = hopper
    torch.manual_seed(0)
    net = policies.make(name, spec, **SMALL[name])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.log_std.fill_(1.0)
    net.reset_parameters()
    assert torch.allclose(net.log_std, torch.full_like(net.log_std, -0.5))
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, before[k])]
    assert any("weight" in k for k in changed)
    # Initial action means are small (0.01-gain head), so exploration starts centred.
    assert net(batch)[0].abs().max() < 0.5


def test_squash_vectors_keeps_direction():
    v = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1e-8, 0.0, 0.0]])
    out = policies.squash_vectors(v)
    assert torch.allclose(out[0], v[0] / 5.0 * np.log1p(5.0))
    assert torch.equal(out[1], v[1])
    assert torch.allclose(out[2], v[2])
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))[0]
    assert torch.allclose(policies.squash_vectors(v @ rot.T), out @ rot.T, atol=1e-6)

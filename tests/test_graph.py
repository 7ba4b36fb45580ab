"""The graph-observation contract: GraphSpec, transform_observation/_action, to_hetero_data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import (
    assert_equivariant,
    assert_obs_equal,
    make_env,
    random_rotation,
    reflect_vertical_plane,
    rot_z,
)

from equigym.graph import (
    ActionGroup,
    EdgeType,
    GraphSpec,
    NodeType,
    as_batch,
    stack,
    to_hetero_data,
    transform_action,
    transform_observation,
)

N_BODY, N_OBJ = 5, 3


def synthetic_spec() -> GraphSpec:
    """Two node types, two edge types (one with attributes), global scalars and all 4 action
    kinds, so every branch of the transforms is exercised."""
    o1 = N_BODY  # scalar: 1 per body
    o2 = o1 + 3 * N_OBJ  # vector: 3 per obj
    o3 = o2 + 3 * N_BODY  # pseudovector: 3 per body
    return GraphSpec(
        node_types=(
            NodeType("body", N_BODY, ("a", "b"), ("v", "w"), ("vector", "pseudovector"),
                     descriptions={"a": "first scalar"}),
            NodeType("obj", N_OBJ, ("m",), ("u",), ("vector",)),
        ),
        edge_types=(
            EdgeType("body", "link", "body", 4, ("length",)),
            EdgeType("body", "holds", "obj", 2),
        ),
        global_vector_names=("gravity", "spin"),
        global_vector_kinds=("vector", "pseudovector"),
        global_scalar_names=("time",),
        actions=(
            ActionGroup("body", 1, "scalar", ("tau",), offset=0),
            ActionGroup("obj", 3, "vector", ("fx", "fy", "fz"), offset=o1),
            ActionGroup("body", 3, "pseudovector", ("tx", "ty", "tz"), offset=o2),
            ActionGroup("obj", 1, "pseudoscalar", ("p",), offset=o3),
        ),
        symmetry="O(3)",
        gravity_channel=0,
    )


SPEC = synthetic_spec()
A_DIM = N_BODY + 3 * N_OBJ + 3 * N_BODY + N_OBJ


def synthetic_obs(rng: np.random.Generator, body_mask=(1, 1, 0, 1, 0), obj_mask=(1, 1, 0)):
    """A random observation obeying the contract: padded nodes and edges are all zero."""
    obs = {}
    for key, ks in SPEC.keys.items():
        obs[key] = rng.standard_normal(ks.shape).astype(np.float32)
    bm = np.asarray(body_mask, np.float32)
    om = np.asarray(obj_mask, np.float32)
    for name, m in (("body", bm), ("obj", om)):
        obs[f"{name}/mask"] = m
        obs[f"{name}/x"] *= m[:, None]
        obs[f"{name}/pos"] *= m[:, None]
        obs[f"{name}/vec"] *= m[:, None, None]
    real_b, real_o = np.flatnonzero(bm), np.flatnonzero(om)
    link = np.zeros((2, 4), np.float32)
    link[:, :3] = [[real_b[0], real_b[0], real_b[1]], [real_b[1], real_b[2], real_b[2]]]
    obs["body-link-body/index"] = link
    obs["body-link-body/mask"] = np.array([1, 1, 1, 0], np.float32)
    obs["body-link-body/attr"][3] = 0.0
    holds = np.zeros((2, 2), np.float32)
    holds[:, 0] = [real_b[2], real_o[1]]
    obs["body-holds-obj/index"] = holds
    obs["body-holds-obj/mask"] = np.array([1, 0], np.float32)
    obs["action_mask"] = (rng.random(A_DIM) > 0.3).astype(np.float32)
    return obs


@pytest.fixture
def obs(rng):
    return synthetic_obs(rng)


# --- GraphSpec ---------------------------------------------------------------------------------
def test_keys_shapes_and_observation_space():
    keys = SPEC.keys
    expected = {
        "body/x": (N_BODY, 2), "body/pos": (N_BODY, 3), "body/vec": (N_BODY, 2, 3),
        "body/mask": (N_BODY,), "obj/x": (N_OBJ, 1), "obj/pos": (N_OBJ, 3),
        "obj/vec": (N_OBJ, 1, 3), "obj/mask": (N_OBJ,),
        "body-link-body/index": (2, 4), "body-link-body/mask": (4,),
        "body-link-body/attr": (4, 1), "body-holds-obj/index": (2, 2),
        "body-holds-obj/mask": (2,), "global/vec": (2, 3), "global/x": (1,),
        "action_mask": (A_DIM,),
    }
    assert {k: v.shape for k, v in keys.items()} == expected
    assert "body-holds-obj/attr" not in keys  # no scalar names: no attr key
    assert keys["body/vec"].channel_kinds == ("vector", "pseudovector")
    assert keys["global/vec"].channel_kinds == ("vector", "pseudovector")
    assert SPEC.action_dim == A_DIM
    space = SPEC.observation_space()
    assert set(space.spaces) == set(keys)
    for key, box in space.spaces.items():
        assert box.dtype == np.float32 and box.shape == keys[key].shape, key
    idx = space["body-holds-obj/index"]
    np.testing.assert_array_equal(idx.high[0], N_BODY - 1)
    np.testing.assert_array_equal(idx.high[1], N_OBJ - 1)
    assert np.all(idx.low == 0) and np.all(space["body/mask"].high == 1)
    assert space.contains(synthetic_obs(np.random.default_rng(0)))
    act = SPEC.action_space()
    assert act.shape == (A_DIM,) and act.dtype == np.float32


def test_spec_json_round_trip():
    text = SPEC.to_json()
    d = json.loads(text)
    assert d == json.loads(json.dumps(SPEC.to_dict()))
    assert d["action_dim"] == A_DIM
    assert d["keys"]["body/vec"]["shape"] == [N_BODY, 2, 3]
    assert d["keys"]["body/vec"]["channel_kinds"] == ["vector", "pseudovector"]
    assert [n["name"] for n in d["node_types"]] == ["body", "obj"]
    assert d["node_types"][0]["descriptions"] == {"a": "first scalar"}
    assert [a["kind"] for a in d["actions"]] == ["scalar", "vector", "pseudovector", "pseudoscalar"]
    # Rebuilding the spec from its JSON gives an equal spec (several node and action kinds).
    rebuilt = GraphSpec.from_json(text)
    assert rebuilt == SPEC


def test_action_layout():
    layout = SPEC.action_layout()
    assert layout.shape == (A_DIM, 3)
    assert np.issubdtype(layout.dtype, np.integer)
    np.testing.assert_array_equal(layout[:N_BODY], [[0, i, 0] for i in range(N_BODY)])
    np.testing.assert_array_equal(layout[N_BODY : N_BODY + 4], [[1, 0, 0], [1, 0, 1], [1, 0, 2],
                                                                [1, 1, 0]])
    # Every row is consistent with the groups' offsets.
    for i, (g, node, ch) in enumerate(layout):
        a = SPEC.actions[g]
        assert a.offset + node * a.per_node + ch == i


def test_edge_type_key_and_triple():
    e = SPEC.edge_types[1]
    assert e.key == "body-holds-obj" and e.triple == ("body", "holds", "obj")
    assert SPEC.node_type("obj").count == N_OBJ
    with pytest.raises(KeyError, match="no node type"):
        SPEC.node_type("ghost")


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: NodeType("n", 2, (), ("v",), ()), "one kind per vector channel"),
        (lambda: NodeType("n", 2, (), ("v",), ("scalar",)), "vector kinds"),
        (lambda: ActionGroup("n", 1, "position", ("a",)), "action kind"),
        (lambda: ActionGroup("n", 2, "vector", ("a", "b")), "per_node == 3"),
        (lambda: ActionGroup("n", 2, "scalar", ("a",)), "one channel name"),
        (lambda: GraphSpec((NodeType("n", 1, (), (), ()), NodeType("n", 2, (), (), ())), (), (),
                           (), ()), "duplicate node type"),
        (lambda: GraphSpec((NodeType("n", 1, (), (), ()),), (EdgeType("n", "r", "m", 1),), (), (),
                           ()), "unknown node type"),
        (lambda: GraphSpec((NodeType("n", 1, (), (), ()),), (), (), (),
                           (ActionGroup("m", 1, "scalar", ("a",)),)), "unknown node type"),
        (lambda: GraphSpec((NodeType("n", 2, (), (), ()),), (), (), (),
                           (ActionGroup("n", 1, "scalar", ("a",)),
                            ActionGroup("n", 1, "scalar", ("b",), offset=3))), "contiguous"),
    ],
    ids=["kinds-count", "kind-name", "action-kind", "vector-per-node", "channel-names",
         "duplicate-nodes", "edge-unknown-node", "action-unknown-node", "non-contiguous"],
)
def test_spec_validation(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# --- transform_observation ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "mat",
    [2.0 * np.eye(3), np.array([[1, 0.5, 0], [0, 1, 0], [0, 0, 1]]), np.zeros((3, 3)), np.eye(2),
     np.eye(4)],
    ids=["scaled", "shear", "zero", "2x2", "4x4"],
)
def test_transform_rejects_non_orthogonal(obs, mat):
    with pytest.raises(ValueError, match="orthogonal"):
        transform_observation(obs, SPEC, mat)


def test_transform_rejects_non_orthogonal_in_batch(rng):
    batch = stack([synthetic_obs(rng), synthetic_obs(rng)])
    rots = np.stack([rot_z(0.3), 1.01 * rot_z(0.1)])
    with pytest.raises(ValueError, match="orthogonal"):
        transform_observation(batch, SPEC, rots)


def test_identity_transform_is_a_copy(obs):
    out = transform_observation(obs, SPEC, np.eye(3))
    assert_obs_equal(out, obs)
    for k in obs:
        assert out[k].dtype == np.float32, k
        assert not np.shares_memory(out[k], obs[k]), f"{k} aliases the input"


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotoreflection"])
def test_transform_acts_by_geometric_type(obs, rng, proper):
    r = random_rotation(rng, proper=proper)
    det = np.linalg.det(r)
    assert np.isclose(abs(det), 1.0) and (det > 0) == proper
    t = np.array([0.7, -1.2, 2.5])
    out = transform_observation(obs, SPEC, r, t)
    f = lambda v: np.asarray(v, np.float64)  # noqa: E731
    for name in ("body", "obj"):
        m = obs[f"{name}/mask"][:, None]
        # Positions rotate and translate (real nodes only).
        np.testing.assert_allclose(out[f"{name}/pos"], (f(obs[f"{name}/pos"]) @ r.T + t) * m,
                                   atol=1e-5)
        # Scalars and masks are untouched.
        np.testing.assert_array_equal(out[f"{name}/x"], obs[f"{name}/x"])
        np.testing.assert_array_equal(out[f"{name}/mask"], obs[f"{name}/mask"])
    # body/vec: channel 0 vector, channel 1 pseudovector; neither translates.
    v, w = f(obs["body/vec"][:, 0]), f(obs["body/vec"][:, 1])
    np.testing.assert_allclose(out["body/vec"][:, 0], v @ r.T, atol=1e-5)
    np.testing.assert_allclose(out["body/vec"][:, 1], det * (w @ r.T), atol=1e-5)
    np.testing.assert_allclose(out["obj/vec"][:, 0], f(obs["obj/vec"][:, 0]) @ r.T, atol=1e-5)
    np.testing.assert_allclose(out["global/vec"][0], f(obs["global/vec"][0]) @ r.T, atol=1e-5)
    np.testing.assert_allclose(out["global/vec"][1], det * f(obs["global/vec"][1]) @ r.T,
                               atol=1e-5)
    for key in ("global/x", "action_mask", "body-link-body/index", "body-link-body/mask",
                "body-link-body/attr", "body-holds-obj/index", "body-holds-obj/mask"):
        np.testing.assert_array_equal(out[key], obs[key], err_msg=key)
    for k in obs:
        assert out[k].dtype == np.float32 and out[k].shape == obs[k].shape, k


def test_pseudovector_flips_under_reflection_only(obs):
    """A pure reflection through the xz-plane: vectors mirror, pseudovectors mirror and negate,
    so the y-component of a pseudovector is kept and its x, z components flip."""
    m = reflect_vertical_plane(np.pi / 2)  # normal +y: (x, y, z) -> (x, -y, z)
    np.testing.assert_allclose(m, np.diag([1.0, -1.0, 1.0]), atol=1e-12)
    out = transform_observation(obs, SPEC, m)
    v, w = obs["body/vec"][:, 0], obs["body/vec"][:, 1]
    np.testing.assert_allclose(out["body/vec"][:, 0], v * [1, -1, 1], atol=1e-6)
    np.testing.assert_allclose(out["body/vec"][:, 1], w * [-1, 1, -1], atol=1e-6)
    # Point reflection -x: vectors negate, pseudovectors stay.
    out = transform_observation(obs, SPEC, -np.eye(3))
    np.testing.assert_allclose(out["body/vec"][:, 0], -v, atol=1e-6)
    np.testing.assert_allclose(out["body/vec"][:, 1], w, atol=1e-6)


def test_padded_nodes_stay_zero(obs, rng):
    out = transform_observation(obs, SPEC, random_rotation(rng, proper=False), [5.0, -3.0, 1.0])
    for name in ("body", "obj"):
        pad = obs[f"{name}/mask"] == 0
        assert pad.any()
        for part in ("x", "pos", "vec"):
            assert np.all(out[f"{name}/{part}"][pad] == 0), f"{name}/{part} padding changed"
        assert np.all(out[f"{name}/pos"][~pad] != obs[f"{name}/pos"][~pad])


def test_transform_composes_and_inverts(obs, rng):
    r1, r2 = random_rotation(rng), random_rotation(rng, proper=False)
    t1, t2 = rng.standard_normal(3), rng.standard_normal(3)
    twice = transform_observation(transform_observation(obs, SPEC, r2, t2), SPEC, r1, t1)
    once = transform_observation(obs, SPEC, r1 @ r2, r1 @ t2 + t1)
    for k in obs:
        np.testing.assert_allclose(twice[k], once[k], atol=1e-5, err_msg=k)
    back = transform_observation(transform_observation(obs, SPEC, r1, t1), SPEC, r1.T, -r1.T @ t1)
    for k in obs:
        np.testing.assert_allclose(back[k], obs[k], atol=1e-5, err_msg=k)


def test_batched_transform_equals_per_sample(rng):
    samples = [synthetic_obs(rng, body_mask=bm) for bm in
               [(1, 1, 1, 1, 1), (1, 1, 0, 1, 0), (1, 0, 1, 1, 0)]]
    batch = stack(samples)
    rots = np.stack([random_rotation(rng), random_rotation(rng, proper=False), rot_z(0.4)])
    ts = rng.standard_normal((3, 3))
    out = transform_observation(batch, SPEC, rots, ts)
    for b, sample in enumerate(samples):
        single = transform_observation(sample, SPEC, rots[b], ts[b])
        for k in sample:
            np.testing.assert_allclose(out[k][b], single[k], atol=1e-5, err_msg=f"{k}[{b}]")
    # One rotation and one translation shared by the whole batch.
    shared = transform_observation(batch, SPEC, rots[1], ts[1])
    for b, sample in enumerate(samples):
        single = transform_observation(sample, SPEC, rots[1], ts[1])
        for k in sample:
            np.testing.assert_allclose(shared[k][b], single[k], atol=1e-5, err_msg=f"{k}[{b}]")


# --- transform_action --------------------------------------------------------------------------
@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotoreflection"])
def test_transform_action_by_kind(rng, proper):
    r = random_rotation(rng, proper=proper)
    det = np.linalg.det(r)
    a = rng.standard_normal(A_DIM).astype(np.float32)
    out = transform_action(a, SPEC, r)
    assert out.dtype == np.float32 and out.shape == a.shape
    o1, o2, o3 = N_BODY, N_BODY + 3 * N_OBJ, N_BODY + 3 * N_OBJ + 3 * N_BODY
    np.testing.assert_array_equal(out[:o1], a[:o1])  # scalar
    np.testing.assert_allclose(out[o1:o2].reshape(-1, 3), a[o1:o2].reshape(-1, 3) @ r.T,
                               atol=1e-5)  # vector
    np.testing.assert_allclose(out[o2:o3].reshape(-1, 3), det * a[o2:o3].reshape(-1, 3) @ r.T,
                               atol=1e-5)  # pseudovector
    np.testing.assert_allclose(out[o3:], det * a[o3:], atol=1e-6)  # pseudoscalar
    # A leading batch axis gives the per-sample result.
    batch = rng.standard_normal((4, A_DIM))
    out_b = transform_action(batch, SPEC, r)
    for b in range(4):
        np.testing.assert_allclose(out_b[b], transform_action(batch[b], SPEC, r), atol=1e-12)


def test_locomotion_actions_are_invariant(walker, rng):
    spec = walker.graph_spec
    assert all(g.kind == "scalar" for g in spec.actions)
    a = rng.uniform(-1, 1, spec.action_dim).astype(np.float32)
    for r in (rot_z(1.0), reflect_vertical_plane(0.3), random_rotation(rng, proper=False)):
        np.testing.assert_array_equal(transform_action(a, spec, r), a)


# --- assert_equivariant (the helper itself) ----------------------------------------------------
def _equivariant_policy(o):
    """Scalar <- body x; vector <- obj u; pseudovector <- body w; pseudoscalar <- u . w[0]."""
    pseudo = np.einsum("...nj,...j->...n", o["obj/vec"][..., 0, :], o["body/vec"][..., 0, 1, :])
    parts = [o["body/x"][..., 0], o["obj/vec"][..., 0, :].reshape(*o["obj/vec"].shape[:-3], -1),
             o["body/vec"][..., 1, :].reshape(*o["body/vec"].shape[:-3], -1), pseudo]
    return np.concatenate(parts, axis=-1)


def test_assert_equivariant_accepts_equivariant_functions(obs):
    assert _equivariant_policy(obs).shape == (A_DIM,)
    err = assert_equivariant(_equivariant_policy, obs, SPEC, atol=1e-5)
    assert err < 1e-5
    # Full O(3) with translations, not only the subequivariant group.
    rng = np.random.default_rng(1)
    group = [(random_rotation(rng, proper=p), rng.standard_normal(3)) for p in (True, False)] * 2
    assert_equivariant(_equivariant_policy, obs, SPEC, transforms=group)
    assert_equivariant(lambda o: o, obs, SPEC, output="obs")
    assert_equivariant(lambda o: o["body/x"].sum(), obs, SPEC, output="invariant")


def test_assert_equivariant_rejects_broken_functions(obs):
    def uses_world_x(o):
        a = _equivariant_policy(o)
        a[N_BODY : N_BODY + 3] = [1.0, 0.0, 0.0]  # a fixed world direction: not equivariant
        return a

    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(uses_world_x, obs, SPEC)

    def pseudo_as_vector(o):
        a = _equivariant_policy(o)
        a[N_BODY : N_BODY + 3 * N_OBJ] = o["body/vec"][:N_OBJ, 1].reshape(-1)  # wrong parity
        return a

    reflections = [(reflect_vertical_plane(0.2), None)]
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(pseudo_as_vector, obs, SPEC, transforms=reflections)
    # A pure z-rotation commutes with rotations about z but not with reflections.
    with pytest.raises(AssertionError):
        assert_equivariant(lambda o: transform_observation(o, SPEC, rot_z(0.3)), obs, SPEC,
                           output="obs", transforms=reflections)
    assert_equivariant(lambda o: transform_observation(o, SPEC, rot_z(0.3)), obs, SPEC,
                       output="obs", transforms=[(rot_z(1.1), None), (rot_z(-2.0), None)])
    with pytest.raises(AssertionError):
        assert_equivariant(lambda o: o["body/pos"].sum(), obs, SPEC, output="invariant")


# --- to_hetero_data ----------------------------------------------------------------------------
def _edges(obs, key):
    m = obs[f"{key}/mask"] > 0.5
    return obs[f"{key}/index"][:, m].astype(np.int64)


@pytest.fixture(scope="module")
def mixed_batch():
    """Observations of three morphologies of different sizes, all padded to 9 nodes."""
    envs = [make_env(m, max_nodes=9) for m in ("walker_7_full", "hopper_3_shin", "humanoid_9_full")]
    assert envs[0].graph_spec == envs[1].graph_spec == envs[2].graph_spec
    samples = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
    rng = np.random.default_rng(0)
    samples[0] = envs[0].step(rng.uniform(-1, 1, envs[0].action_space.shape))[0]
    counts = [env.robot.n for env in envs]
    return envs[0].graph_spec, samples, counts


def test_to_hetero_data_on_mixed_morphologies(mixed_batch):
    spec, samples, counts = mixed_batch
    assert counts == [7, 3, 9]
    data = to_hetero_data(stack(samples), spec)
    body = data["body"]
    n = sum(counts)
    assert body.x.shape == (n, len(spec.node_type("body").scalar_names))
    assert body.pos.shape == (n, 3) and body.vec.shape == (n, 6, 3)
    assert body.x.dtype == torch.float32
    np.testing.assert_array_equal(body.batch.numpy(), np.repeat(np.arange(3), counts))
    np.testing.assert_array_equal(body.node_index.numpy(),
                                  np.concatenate([np.arange(c) for c in counts]))
    offsets = np.cumsum([0, *counts[:-1]])
    for attr, key in (("x", "body/x"), ("pos", "body/pos"), ("vec", "body/vec")):
        real = [s[key][:c] for s, c in zip(samples, counts, strict=True)]
        np.testing.assert_allclose(body[attr].numpy(), np.concatenate(real), err_msg=attr)
    for e in spec.edge_types:
        ei = data[e.triple].edge_index
        assert ei.dtype == torch.long
        expected = np.concatenate(
            [_edges(s, e.key) + off for s, off in zip(samples, offsets, strict=True)], axis=1)
        np.testing.assert_array_equal(ei.numpy(), expected)
        assert ei.shape[1] == sum(c - 1 for c in counts)
        assert int(ei.min()) >= 0 and int(ei.max()) < n
        # Edges never cross samples.
        np.testing.assert_array_equal(body.batch[ei[0]].numpy(), body.batch[ei[1]].numpy())
    assert data.num_graphs == 3
    assert tuple(data.global_vec.shape) == (3, 2, 3)
    assert tuple(data.action_mask.shape) == (3, spec.action_dim)
    np.testing.assert_array_equal(data.action_mask.sum(1).numpy(),
                                  [s["action_mask"].sum() for s in samples])


def test_to_hetero_data_accepts_torch_and_single_obs(mixed_batch):
    spec, samples, counts = mixed_batch
    batch = stack(samples)
    from_np = to_hetero_data(batch, spec)
    from_torch = to_hetero_data({k: torch.as_tensor(v) for k, v in batch.items()}, spec)
    for attr in ("x", "pos", "vec", "batch"):
        assert torch.equal(from_np["body"][attr], from_torch["body"][attr]), attr
    for e in spec.edge_types:
        assert torch.equal(from_np[e.triple].edge_index, from_torch[e.triple].edge_index)
    single = to_hetero_data(samples[1], spec)
    assert single["body"].x.shape[0] == counts[1]
    assert torch.all(single["body"].batch == 0)
    assert single.num_graphs == 1
    as_one = to_hetero_data(as_batch(samples[1]), spec)
    assert torch.equal(single["body"].x, as_one["body"].x)


def test_to_hetero_data_renumbers_around_holes(rng):
    """Padding in the middle of the node list: real nodes are renumbered densely."""
    s0 = synthetic_obs(rng, body_mask=(1, 0, 1, 1, 0), obj_mask=(0, 1, 1))
    s1 = synthetic_obs(rng, body_mask=(1, 1, 1, 0, 0), obj_mask=(1, 1, 0))
    data = to_hetero_data(stack([s0, s1]), SPEC)
    body_map = [{0: 0, 2: 1, 3: 2}, {0: 3, 1: 4, 2: 5}]
    obj_map = [{1: 0, 2: 1}, {0: 2, 1: 3}]
    assert data["body"].x.shape[0] == 6 and data["obj"].x.shape[0] == 4
    np.testing.assert_array_equal(data["obj"].batch.numpy(), [0, 0, 1, 1])
    np.testing.assert_array_equal(data["body"].node_index.numpy(), [0, 2, 3, 0, 1, 2])
    for key, src_map, tgt_map in (("body-link-body", body_map, body_map),
                                  ("body-holds-obj", body_map, obj_map)):
        triple = tuple(key.split("-"))
        expected = [[], []]
        for b, s in enumerate((s0, s1)):
            for i, j in _edges(s, key).T:
                expected[0].append(src_map[b][i])
                expected[1].append(tgt_map[b][j])
        np.testing.assert_array_equal(data[triple].edge_index.numpy(), expected)
    attr = data[("body", "link", "body")].edge_attr
    np.testing.assert_allclose(attr.numpy(), np.concatenate([s0["body-link-body/attr"][:3],
                                                              s1["body-link-body/attr"][:3]]))
    assert not hasattr(data[("body", "holds", "obj")], "edge_attr") or \
        data[("body", "holds", "obj")].get("edge_attr") is None
    np.testing.assert_allclose(data.global_x.numpy(), [s0["global/x"], s1["global/x"]])


def test_spec_json_round_trip_rebuilds_an_equal_spec():
    import gymnasium as gym

    import equigym  # noqa: F401

    cases = (
        {"morphology": "cheetah_14_full"},
        {"morphology": "walker_3_left_knee_right_knee", "max_nodes": 9},
    )
    for kwargs in cases:
        spec = gym.make("equigym/Locomotion3D-v0", **kwargs).unwrapped.graph_spec
        again = GraphSpec.from_json(spec.to_json())
        assert again == spec
        assert again.keys == spec.keys
        assert again.node_types[0].descriptions == spec.node_types[0].descriptions


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"node_types": []}'])
def test_spec_from_bad_json_raises_value_error(text):
    with pytest.raises(ValueError, match="spec"):
        GraphSpec.from_json(text)

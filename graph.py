"""The graph-observation contract shared by every equigym env and policy.

An equigym observation is a flat ``dict`` of fixed-shape ``float32`` arrays (a Gymnasium ``Dict``
space, which Stable-Baselines3 accepts), padded to a fixed number of nodes and edges and described
by a frozen :class:`GraphSpec` on ``env.unwrapped.graph_spec``. For a node type ``t``, an edge type
``(s, r, d)`` and the globals, the keys are:

==========================  =============  =================================================
key                         shape          geometric type
==========================  =============  =================================================
``t/x``                     (N_t, S_t)     scalar: invariant features, names in ``scalar_names``
``t/pos``                   (N_t, 3)       position: world frame, rotates and translates
``t/vec``                   (N_t, K_t, 3)  vector channels: each ``vector`` or ``pseudovector``
``t/mask``                  (N_t,)         mask: 1 for real nodes, 0 for padding
``s-r-d/index``             (2, E)         index: (source, target) node indices, padding is 0
``s-r-d/mask``              (E,)           mask: 1 for real edges
``s-r-d/attr``              (E, F)         scalar edge features (only if the edge type has any)
``global/vec``              (G, 3)         vector channels of the whole graph (gravity, …)
``global/x``                (H,)           global scalars (only if there are any)
``action_mask``             (A,)           mask: 1 for action dimensions that drive an actuator
==========================  =============  =================================================

Everything is ``float32`` (indices included, exact below 2**24) because SB3 casts observations to
float anyway; :func:`to_hetero_data` turns indices back into ``long``. Because the spec names the
geometric type of every key and of the action, :func:`transform_observation` and
:func:`transform_action` rotate and translate any equigym observation without knowing the env.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:  # torch stays out of the env import path
    import torch
    from torch_geometric.data import HeteroData

GeomType = Literal["scalar", "pseudoscalar", "position", "vector", "pseudovector", "index", "mask"]
_VECTOR_KINDS = ("vector", "pseudovector")
_F32 = np.dtype(np.float32)
_ACTION_KINDS = ("scalar", "pseudoscalar", "vector", "pseudovector")


@dataclass(frozen=True)
class NodeType:
    """A node type and its padded features.

    Attributes:
        name: Node type name, the prefix of its keys (``"body"``, ``"object"``, ``"actuator"``).
        count: Padded node count ``N``; the ``mask`` key marks the real nodes.
        scalar_names: Names of the columns of ``<name>/x`` (invariant under the env's symmetry).
        vector_names: Names of the channels of ``<name>/vec``.
        vector_kinds: ``"vector"`` or ``"pseudovector"`` for each channel of ``<name>/vec``.
        descriptions: Optional one-line description per feature name (units, frame).
    """

    name: str
    count: int
    scalar_names: tuple[str, ...]
    vector_names: tuple[str, ...]
    vector_kinds: tuple[GeomType, ...]
    descriptions: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.vector_names) != len(self.vector_kinds):
            raise ValueError(f"node type {self.name!r}: one kind per vector channel is required")
        if any(k not in _VECTOR_KINDS for k in self.vector_kinds):
            raise ValueError(f"node type {self.name!r}: vector kinds must be {_VECTOR_KINDS}")


@dataclass(frozen=True)
class EdgeType:
    """A typed, directed edge set ``source --relation--> target``, padded to ``count`` edges."""

    source: str
    relation: str
    target: str
    count: int
    scalar_names: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Observation key prefix, ``"<source>-<relation>-<target>"``."""
        return f"{self.source}-{self.relation}-{self.target}"

    @property
    def triple(self) -> tuple[str, str, str]:
        """The ``(source, relation, target)`` triple used by torch_geometric's ``HeteroData``."""
        return (self.source, self.relation, self.target)


@dataclass(frozen=True)
class ActionGroup:
    """A block of the flat action vector that acts on the nodes of one type.

    Action index ``offset + node * per_node + channel`` acts on ``node`` of ``node_type``.

    Attributes:
        node_type: Node type the block acts on.
        per_node: Action dimensions per node.
        kind: Geometric type of each node's action: ``"scalar"`` / ``"pseudoscalar"`` (one value
            per channel, e.g. a torque about a hinge axis the observation provides) or
            ``"vector"`` / ``"pseudovector"`` (``per_node == 3``: one 3-vector in the world frame).
        channel_names: Name of each of the ``per_node`` channels.
        axis_channels: For scalar torques: the ``vec`` channel of the node holding the axis that
            each action channel acts about (so ``a_k * vec[axis_channels[k]]`` is the world-frame
            torque direction); empty otherwise.
        offset: Index of the block's first entry in the flat action.
    """

    node_type: str
    per_node: int
    kind: GeomType
    channel_names: tuple[str, ...]
    axis_channels: tuple[int, ...] = ()
    offset: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _ACTION_KINDS:
            raise ValueError(f"action kind must be one of {_ACTION_KINDS}, got {self.kind!r}")
        if self.kind in _VECTOR_KINDS and self.per_node != 3:
            raise ValueError("a vector action group needs per_node == 3")
        if len(self.channel_names) != self.per_node:
            raise ValueError("one channel name per action dimension is required")


@dataclass(frozen=True)
class KeySpec:
    """Shape and geometric type of one observation key."""

    key: str
    shape: tuple[int, ...]
    kind: GeomType
    channel_kinds: tuple[GeomType, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class GraphSpec:
    """Frozen description of an env's graph observation and action (``env.unwrapped.graph_spec``).

    Attributes:
        node_types: Node types, in the order policies see them.
        edge_types: Typed edge sets.
        global_vector_names: Channels of ``global/vec`` (e.g. ``gravity``, ``target_dir``).
        global_vector_kinds: ``"vector"`` / ``"pseudovector"`` per global channel.
        global_scalar_names: Entries of ``global/x`` (empty: no such key).
        actions: Blocks of the flat action vector.
        symmetry: The transformations under which the task is symmetric, in words.
        gravity_channel: Index of gravity in ``global/vec`` (``None`` if the task has none).
    """

    node_types: tuple[NodeType, ...]
    edge_types: tuple[EdgeType, ...]
    global_vector_names: tuple[str, ...]
    global_vector_kinds: tuple[GeomType, ...]
    actions: tuple[ActionGroup, ...]
    global_scalar_names: tuple[str, ...] = ()
    symmetry: str = ""
    gravity_channel: int | None = None

    def __post_init__(self) -> None:
        names = [n.name for n in self.node_types]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate node type names: {names}")
        for e in self.edge_types:
            if e.source not in names or e.target not in names:
                raise ValueError(f"edge type {e.key!r} refers to an unknown node type")
        for a in self.actions:
            if a.node_type not in names:
                raise ValueError(f"action group refers to unknown node type {a.node_type!r}")
        offset = 0
        for a in self.actions:
            if a.offset != offset:
                raise ValueError("action groups must be contiguous, in order, starting at 0")
            offset += a.per_node * self.node_type(a.node_type).count

    def node_type(self, name: str) -> NodeType:
        """The node type called ``name``."""
        for n in self.node_types:
            if n.name == name:
                return n
        raise KeyError(f"no node type {name!r}; have {[n.name for n in self.node_types]}")

    @property
    def action_dim(self) -> int:
        """Length of the flat action vector."""
        return sum(a.per_node * self.node_type(a.node_type).count for a in self.actions)

    @property
    def keys(self) -> dict[str, KeySpec]:
        """Every observation key with its shape and geometric type, in a fixed order."""
        out: dict[str, KeySpec] = {}

        def add(key, shape, kind, channel_kinds=(), description=""):
            out[key] = KeySpec(key, tuple(shape), kind, tuple(channel_kinds), description)

        for n in self.node_types:
            add(f"{n.name}/x", (n.count, len(n.scalar_names)), "scalar",
                description=f"invariant features: {', '.join(n.scalar_names)}")
            add(f"{n.name}/pos", (n.count, 3), "position", description="world-frame position, m")
            add(f"{n.name}/vec", (n.count, len(n.vector_names), 3), "vector", n.vector_kinds,
                description=f"world-frame vector channels: {', '.join(n.vector_names)}")
            add(f"{n.name}/mask", (n.count,), "mask", description="1 = real node, 0 = padding")
        for e in self.edge_types:
            add(f"{e.key}/index", (2, e.count), "index",
                description=f"(source {e.source}, target {e.target}) node indices")
            add(f"{e.key}/mask", (e.count,), "mask", description="1 = real edge, 0 = padding")
            if e.scalar_names:
                add(f"{e.key}/attr", (e.count, len(e.scalar_names)), "scalar",
                    description=f"invariant edge features: {', '.join(e.scalar_names)}")
        add("global/vec", (len(self.global_vector_names), 3), "vector", self.global_vector_kinds,
            description=f"world-frame global vectors: {', '.join(self.global_vector_names)}")
        if self.global_scalar_names:
            add("global/x", (len(self.global_scalar_names),), "scalar",
                description=f"global invariants: {', '.join(self.global_scalar_names)}")
        add("action_mask", (self.action_dim,), "mask",
            description="1 = action dimension drives an actuator, 0 = padding / passive")
        return out

    def observation_space(self) -> spaces.Dict:
        """The Gymnasium ``Dict`` space of this spec (all ``float32``)."""
        out = {}
        for key, ks in self.keys.items():
            if ks.kind == "mask":
                low, high = 0.0, 1.0
            elif ks.kind == "index":
                src, tgt = self._edge(key).source, self._edge(key).target
                high = np.empty(ks.shape, np.float32)
                # At least 1: Gymnasium warns about a Box whose low equals its high.
                high[0] = max(self.node_type(src).count - 1, 1)
                high[1] = max(self.node_type(tgt).count - 1, 1)
                low = 0.0
            else:
                low, high = -np.inf, np.inf
            out[key] = spaces.Box(low=low, high=high, shape=ks.shape, dtype=np.float32)
        return spaces.Dict(out)

    def action_space(self, low: float = -1.0, high: float = 1.0) -> spaces.Box:
        """The flat ``Box`` action space (padded dimensions included, see ``action_mask``)."""
        return spaces.Box(low=low, high=high, shape=(self.action_dim,), dtype=np.float32)

    def action_layout(self) -> np.ndarray:
        """``(A, 3)`` int array: for each action index its (group, node, channel)."""
        rows = []
        for g, a in enumerate(self.actions):
            for node in range(self.node_type(a.node_type).count):
                rows += [(g, node, c) for c in range(a.per_node)]
        return np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    def _edge(self, key: str) -> EdgeType:
        prefix = key.rsplit("/", 1)[0]
        for e in self.edge_types:
            if e.key == prefix:
                return e
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (also lists every key's shape and geometric type)."""
        d = asdict(self)
        for n in d["node_types"]:
            n["descriptions"] = dict(n["descriptions"])
        d["keys"] = {k: asdict(v) for k, v in self.keys.items()}
        d["action_dim"] = self.action_dim
        return d

    def to_json(self, **kwargs: Any) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GraphSpec:
        """Rebuild a spec from :meth:`to_dict` output (derived entries such as ``keys`` ignored).

        Raises:
            ValueError: If ``data`` is not a spec dictionary.
        """
        try:
            return cls(
                node_types=tuple(
                    NodeType(
                        name=n["name"],
                        count=int(n["count"]),
                        scalar_names=tuple(n["scalar_names"]),
                        vector_names=tuple(n["vector_names"]),
                        vector_kinds=tuple(n["vector_kinds"]),
                        descriptions=dict(n.get("descriptions", {})),
                    )
                    for n in data["node_types"]
                ),
                edge_types=tuple(
                    EdgeType(
                        source=e["source"],
                        relation=e["relation"],
                        target=e["target"],
                        count=int(e["count"]),
                        scalar_names=tuple(e.get("scalar_names", ())),
                    )
                    for e in data["edge_types"]
                ),
                global_vector_names=tuple(data["global_vector_names"]),
                global_vector_kinds=tuple(data["global_vector_kinds"]),
                actions=tuple(
                    ActionGroup(
                        node_type=a["node_type"],
                        per_node=int(a["per_node"]),
                        kind=a["kind"],
                        channel_names=tuple(a["channel_names"]),
                        axis_channels=tuple(a.get("axis_channels", ())),
                        offset=int(a.get("offset", 0)),
                    )
                    for a in data["actions"]
                ),
                global_scalar_names=tuple(data.get("global_scalar_names", ())),
                symmetry=data.get("symmetry", ""),
                gravity_channel=data.get("gravity_channel"),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a graph spec dictionary (missing or bad entry: {err})") from err

    @classmethod
    def from_json(cls, text: str) -> GraphSpec:
        """Rebuild a spec from :meth:`to_json` text (e.g. a run folder's ``graph_spec.json``).

        Raises:
            ValueError: If the text is not JSON of a spec.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"graph spec is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValueError("graph spec JSON must be an object")
        return cls.from_dict(data)


class ObsBuffer:
    """A persistent flat ``float32`` buffer with a writable view per observation key.

    Envs fill the views in place (no allocation in ``step``) and hand out :meth:`snapshot`, which
    copies the buffer once and returns fresh views, so returned observations are never reused.
    """

    def __init__(self, spec: GraphSpec) -> None:
        self.keys = spec.keys
        sizes = [int(np.prod(k.shape)) for k in self.keys.values()]
        self._flat = np.zeros(sum(sizes), dtype=np.float32)
        self._layout: list[tuple[str, tuple[int, ...], int]] = []  # key, shape, byte offset
        start = 0
        for (key, ks), size in zip(self.keys.items(), sizes, strict=True):
            self._layout.append((key, ks.shape, start * 4))
            start += size
        self.views: dict[str, np.ndarray] = self._views(self._flat)

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        # np.ndarray(shape, dtype, buffer, offset) is one call per key, ~2x cheaper than
        # slicing and reshaping; this runs every env step.
        nd, f32 = np.ndarray, _F32
        return {key: nd(shape, f32, flat, offset) for key, shape, offset in self._layout}

    def snapshot(self) -> dict[str, np.ndarray]:
        """A fresh observation dict (one copy of the whole buffer)."""
        return self._views(self._flat.copy())



def _apply(mat: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``mat @ v`` over the last axis of ``v``; ``mat`` is (3, 3) or batched (B, 3, 3)."""
    if mat.ndim == 2:
        return v @ mat.T
    shape = v.shape
    out = np.einsum("bij,bnj->bni", mat, v.reshape(shape[0], -1, 3))
    return out.reshape(shape)


def transform_observation(
    obs: Mapping[str, np.ndarray],
    spec: GraphSpec,
    rotation: np.ndarray,
    translation: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Apply ``x -> R x + t`` to an observation, as its spec's geometric types say.

    Positions rotate and translate; vectors rotate; pseudovectors rotate and take ``det(R)``;
    scalars, masks and indices stay. Padded nodes stay zero. Works on one observation or on a
    batch (leading batch axis, with ``rotation`` (3, 3) or (B, 3, 3) and ``translation`` (3,) or
    (B, 3)).

    Args:
        obs: Observation dict (numpy arrays).
        spec: The env's :class:`GraphSpec`.
        rotation: Orthogonal 3x3 matrix (or a batch of them).
        translation: Translation in metres (default zero).

    Returns:
        A new observation dict.

    Raises:
        ValueError: If ``rotation`` is not orthogonal.
    """
    rot = np.asarray(rotation, dtype=np.float64)
    if rot.ndim not in (2, 3) or rot.shape[-2:] != (3, 3):
        raise ValueError(
            f"rotation must be an orthogonal 3x3 matrix (or a batch), got shape {rot.shape}"
        )
    eye = np.broadcast_to(np.eye(3), rot.shape)
    if not np.allclose(rot @ np.swapaxes(rot, -1, -2), eye, atol=1e-5):
        raise ValueError("rotation must be an orthogonal 3x3 matrix (or a batch of them)")
    det = np.linalg.det(rot)
    keys = spec.keys
    batched = np.ndim(obs["action_mask"]) == 2
    out = {k: np.array(v, copy=True) for k, v in obs.items()}
    for key, ks in keys.items():
        if ks.kind not in ("position", "vector"):
            continue
        v = np.asarray(obs[key], dtype=np.float64)
        new = _apply(rot, v)
        if ks.kind == "position":
            if translation is not None:
                t = np.asarray(translation, dtype=np.float64)
                new = new + (t[:, None, :] if batched and t.ndim == 2 else t)
            mask = np.asarray(obs[key.replace("/pos", "/mask")])[..., None]
            new = new * mask
        else:
            pseudo = np.array([k == "pseudovector" for k in ks.channel_kinds])
            if pseudo.any():
                # Channels sit on axis -2; det is a scalar or one per batch entry.
                d = det.reshape(-1, *([1] * (v.ndim - 1))) if np.ndim(det) else det
                new = new * np.where(pseudo[:, None], d, 1.0)
        out[key] = new.astype(np.asarray(obs[key]).dtype)
    return out


def transform_action(action: np.ndarray, spec: GraphSpec, rotation: np.ndarray) -> np.ndarray:
    """Apply the rotation ``R`` to a flat action, as the spec's action groups say.

    Scalar groups stay, pseudoscalars take ``det(R)``, vectors rotate, pseudovectors rotate and
    take ``det(R)``. ``action`` may carry a leading batch axis (``rotation`` then (3, 3)).
    """
    rot = np.asarray(rotation, dtype=np.float64)
    det = float(np.linalg.det(rot))
    out = np.array(action, dtype=np.float64, copy=True)
    for a in spec.actions:
        n = spec.node_type(a.node_type).count
        sl = slice(a.offset, a.offset + n * a.per_node)
        block = out[..., sl].reshape(*out.shape[:-1], n, a.per_node)
        if a.kind in _VECTOR_KINDS:
            block = block @ rot.T
        if a.kind.startswith("pseudo"):
            block = block * det
        out[..., sl] = block.reshape(*out.shape[:-1], -1)
    return out.astype(np.asarray(action).dtype)


def to_hetero_data(obs: Mapping[str, Any], spec: GraphSpec) -> HeteroData:
    """Turn a batch of observations into one batched torch_geometric ``HeteroData``.

    Padded nodes and edges are dropped and node indices renumbered, with no Python loop over the
    batch (only over node and edge types). Single observations (no batch axis) are accepted too.

    Args:
        obs: Observation dict of numpy arrays or torch tensors, shapes ``(B, *shape)``.
        spec: The env's :class:`GraphSpec`.

    Returns:
        ``HeteroData`` with, per node type ``t``: ``x`` (n, S), ``pos`` (n, 3), ``vec`` (n, K, 3),
        ``batch`` (n,) and ``node_index`` (n,), the node's slot in its padded observation; per edge
        type: ``edge_index`` (2, e) long and ``edge_attr`` if present; and graph-level
        ``global_vec`` (B, G, 3), ``global_x`` (B, H) and ``action_mask`` (B, A).
    """
    import torch
    from torch_geometric.data import HeteroData

    def tensor(key: str) -> torch.Tensor:
        v = obs[key]
        return v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))

    keys = spec.keys
    batched = tensor("action_mask").dim() == 2
    data = HeteroData()
    remap: dict[str, torch.Tensor] = {}
    for n in spec.node_types:
        mask = tensor(f"{n.name}/mask").reshape(-1, n.count) > 0.5
        bsz = mask.shape[0]
        flat = mask.reshape(-1)
        remap[n.name] = torch.cumsum(flat.long(), 0) - 1
        store = data[n.name]
        store.x = tensor(f"{n.name}/x").reshape(bsz * n.count, -1)[flat].float()
        store.pos = tensor(f"{n.name}/pos").reshape(bsz * n.count, 3)[flat].float()
        store.vec = tensor(f"{n.name}/vec").reshape(bsz * n.count, -1, 3)[flat].float()
        store.batch = torch.arange(bsz).repeat_interleave(n.count)[flat]
        store.node_index = torch.arange(n.count).repeat(bsz)[flat]
    for e in spec.edge_types:
        n_src, n_tgt = spec.node_type(e.source).count, spec.node_type(e.target).count
        index = tensor(f"{e.key}/index").reshape(-1, 2, e.count).round().long()
        bsz = index.shape[0]
        emask = (tensor(f"{e.key}/mask").reshape(bsz, e.count) > 0.5).reshape(-1)
        base = torch.arange(bsz).unsqueeze(1)
        src = (index[:, 0] + base * n_src).reshape(-1)[emask]
        tgt = (index[:, 1] + base * n_tgt).reshape(-1)[emask]
        store = data[e.triple]
        store.edge_index = torch.stack([remap[e.source][src], remap[e.target][tgt]])
        if f"{e.key}/attr" in keys:
            store.edge_attr = tensor(f"{e.key}/attr").reshape(bsz * e.count, -1)[emask].float()
    data.global_vec = tensor("global/vec").reshape(-1, len(spec.global_vector_names), 3).float()
    if "global/x" in keys:
        data.global_x = tensor("global/x").reshape(-1, len(spec.global_scalar_names)).float()
    data.action_mask = tensor("action_mask").reshape(-1, spec.action_dim).float()
    data.num_graphs = data.action_mask.shape[0]
    data.batched = batched
    return data


def as_batch(obs: Mapping[str, Any]) -> dict[str, Any]:
    """Add a leading batch axis of 1 to a single observation (numpy or torch)."""
    return {k: v[None] for k, v in obs.items()}


def stack(observations: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack observations with identical keys and shapes into one batch (leading axis)."""
    if not observations:
        raise ValueError("stack() needs at least one observation")
    return {k: np.stack([o[k] for o in observations]) for k in observations[0]}


__all__ = [
    "ActionGroup",
    "EdgeType",
    "GeomType",
    "GraphSpec",
    "KeySpec",
    "NodeType",
    "ObsBuffer",
    "as_batch",
    "stack",
    "to_hetero_data",
    "transform_action",
    "transform_observation",
]

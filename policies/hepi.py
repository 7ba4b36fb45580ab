"""HEPi: heterogeneous equivariant message passing over any equigym graph spec.

After "Geometry-aware RL for Manipulation of Varying Shapes and Deformable Objects" (Hoang et al.,
ICLR 2025, arXiv:2502.07005): one convolution per edge type, applied in rounds, with equivariant
action read-outs. The reference uses a PONITA backbone (orientation grid); here the default
``backbone="vector"`` uses the vector-channel layers of :mod:`equigym.policies.layers`, which are
exactly equivariant (no discrete grid) and cheap on a CPU.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from equigym.graph import EdgeType, GraphSpec
from equigym.policies.base import (
    ACTION_GAIN,
    HIDDEN_GAIN,
    VALUE_GAIN,
    GraphPolicy,
    Obs,
    activation_class,
    masked_mean,
    orthogonal_,
    squash_vectors,
)
from equigym.policies.gnn import EdgeBatch, flatten_edges
from equigym.policies.layers import (
    EquivariantVectorConv,
    EquivariantVectorUpdate,
    VectorLinear,
    edge_vectors,
    inner,
)
from equigym.policies.ponita import PonitaConv, PonitaUpdate, fibonacci_sphere

BACKBONES: tuple[str, ...] = ("vector", "ponita")
"""Values of ``HEPiPolicy(backbone=...)``: exact vector layers, or PONITA orientation grids."""
CRITICS: tuple[str, ...] = ("encoder", "deepsets")
"""Values of ``HEPiPolicy(critic=...)``."""
_VECTOR_KINDS = ("vector", "pseudovector")


class GraphInputs(NamedTuple):
    """Equivariant inputs of every node type, flattened to ``(B*N_t, ...)`` tensors.

    Padded nodes hold zeros everywhere (even if the observation has garbage there).
    """

    scalars: dict[str, Tensor]
    """(B*N_t, S'_t) invariants: node scalars, Gram matrix of the input vectors, type one-hot."""
    vectors: dict[str, Tensor]
    """(B*N_t, 3, K'_t), xyz-major: node vector channels, position minus centroid, globals."""
    pos: dict[str, Tensor]
    """(B*N_t, 3) position minus the masked centroid of its graph."""
    mask: dict[str, Tensor]
    """(B*N_t, 1) float, 1 for real nodes."""
    edges: dict[str, EdgeBatch]
    """Flattened real edges per edge-type key (:func:`~equigym.policies.gnn.flatten_edges`)."""
    edge_vec: dict[str, Tensor]
    """(B*E_e, 3) squashed ``p_source - p_target`` per edge-type key, computed once per pass."""
    glob: Tensor
    """(B, G') global invariants: Gram matrix of the global vectors and the global scalars."""


def _gram(vectors: Tensor) -> Tensor:
    """Upper triangle, diagonal included, of the Gram matrix of ``(..., 3, K)`` vectors."""
    k = vectors.shape[-1]
    rows, cols = torch.triu_indices(k, k, device=vectors.device)
    return inner(vectors[..., rows], vectors[..., cols])


def default_rounds(spec: GraphSpec, n_layers: int) -> tuple[tuple[str, ...], ...]:
    """``n_layers`` rounds of message passing over the edge types of ``spec``.

    Where some edge types end at node types that actions act on and others do not (HEPi's
    manipulation graphs: ``object-knn-object`` vs ``object-task-actuator`` and
    ``actuator-agent-actuator``), the reference's schedule: the first ``n_layers - 1`` rounds
    pass messages among the other nodes, the last one into the acted-on nodes. Otherwise (e.g.
    locomotion, one node type) every edge type in every round. No edges: no rounds.
    """
    keys = tuple(e.key for e in spec.edge_types)
    if not keys:
        return ()
    acted = {g.node_type for g in spec.actions}
    into = tuple(e.key for e in spec.edge_types if e.target in acted)
    among = tuple(e.key for e in spec.edge_types if e.target not in acted)
    if into and among and n_layers >= 2:
        return (*(among for _ in range(n_layers - 1)), into)
    return tuple(keys for _ in range(n_layers))


class RoundPlan(NamedTuple):
    """What one round of an encoder computes."""

    convs: tuple[str, ...]
    """Edge-type keys whose messages are computed."""
    updates: dict[str, bool]
    """Node types updated in the round → whether their vector channels are updated too."""


class HeteroVectorEncoder(nn.Module):
    """E(3)-equivariant: heterogeneous message passing in rounds, one convolution per edge type.

    Each node type ``t`` embeds its invariant inputs with its own MLP and lifts its input vectors
    to ``K`` channels with its own bias-free channel mix. Round ``r`` runs one
    :class:`~equigym.policies.layers.EquivariantVectorConv` per edge type listed in
    ``rounds[r]`` (its own weights), sums the messages of all edge types arriving at each node
    type (``HeteroConv(aggr="sum")``; each edge type averages over its own in-edges), and updates
    each node type that received messages with its own
    :class:`~equigym.policies.layers.EquivariantVectorUpdate` (a single residual per round, not
    one per edge type). Padded nodes are zeroed after every round.

    Only what the caller reads is built and computed (:meth:`plan_rounds`): e.g. an actor that
    reads only actuator nodes skips the last round's messages into object nodes, and a critic,
    which reads only scalars, does not update vectors in its last round. So every parameter
    influences an output, and no work is wasted.

    Args:
        spec: The graph spec.
        in_scalars: Invariant input width per node type.
        in_vectors: Input vector channels per node type.
        hidden_dim: Scalar width ``C``.
        vector_dim: Vector channels ``K``.
        rounds: Edge-type keys of each round.
        activation: Activation module class.
        layer_norm: LayerNorm on updated scalars.
        scalar_outputs: Node types whose final scalars the caller reads.
        vector_outputs: Node types whose final vectors the caller reads.
    """

    def __init__(
        self,
        spec: GraphSpec,
        in_scalars: dict[str, int],
        in_vectors: dict[str, int],
        hidden_dim: int,
        vector_dim: int,
        rounds: tuple[tuple[str, ...], ...],
        activation: type[nn.Module],
        layer_norm: bool = True,
        scalar_outputs: Collection[str] = (),
        vector_outputs: Collection[str] = (),
    ) -> None:
        super().__init__()
        self.spec, self.rounds = spec, rounds
        self.scalar_outputs = frozenset(scalar_outputs)
        self.vector_outputs = frozenset(vector_outputs)
        self.edge_types: dict[str, EdgeType] = {e.key: e for e in spec.edge_types}
        self.plan, inputs = self.plan_rounds()
        c, k = hidden_dim, vector_dim
        self.embed = nn.ModuleDict(
            {
                t: nn.Sequential(nn.Linear(d, c), activation())
                for t, d in in_scalars.items()
                if t in inputs
            }
        )
        self.lift = nn.ModuleDict(
            {t: VectorLinear(d, k) for t, d in in_vectors.items() if t in inputs}
        )
        self.build_rounds(c, k, activation, layer_norm)

    def plan_rounds(self) -> tuple[list[RoundPlan], set[str]]:
        """Per round, the convolutions and updates the outputs depend on; and the input types.

        Walks the rounds backwards from the outputs: a node type's state (scalars and vectors,
        which feed each other) is needed before round ``r`` if it passes through unchanged to a
        later need, or feeds a needed update or convolution of round ``r``.
        """
        need_h, need_v = set(self.scalar_outputs), set(self.vector_outputs)
        plan: list[RoundPlan] = []
        for keys in reversed(self.rounds):
            targets = {self.edge_types[k].target for k in keys}
            updates = {t: t in need_v for t in sorted(targets & (need_h | need_v))}
            convs = tuple(k for k in keys if self.edge_types[k].target in updates)
            used = set(updates)
            for k in convs:
                used |= {self.edge_types[k].source, self.edge_types[k].target}
            need_h = (need_h - targets) | used
            need_v = (need_v - targets) | used
            plan.append(RoundPlan(convs, updates))
        return plan[::-1], need_h | need_v

    def build_rounds(
        self, hidden_dim: int, vector_dim: int, activation: type[nn.Module], layer_norm: bool
    ) -> None:
        """Create ``convs[r][edge_key]`` and ``updates[r][node_type]`` as :attr:`plan` says."""
        self.convs = nn.ModuleList()
        self.updates = nn.ModuleList()
        for step in self.plan:
            self.convs.append(
                nn.ModuleDict(
                    {
                        key: EquivariantVectorConv(
                            hidden_dim,
                            vector_dim,
                            len(self.edge_types[key].scalar_names),
                            activation,
                        )
                        for key in step.convs
                    }
                )
            )
            self.updates.append(
                nn.ModuleDict(
                    {
                        t: EquivariantVectorUpdate(
                            hidden_dim, vector_dim, activation, layer_norm, update_vectors
                        )
                        for t, update_vectors in step.updates.items()
                    }
                )
            )

    def reset_parameters(self) -> None:
        """Orthogonal embeddings (gain sqrt 2); every layer re-initialised."""
        orthogonal_(self.embed, HIDDEN_GAIN)
        for module in self.modules():
            if module is not self and isinstance(
                module, VectorLinear | EquivariantVectorConv | EquivariantVectorUpdate
            ):
                module.reset_parameters()

    def prepare_edges(self, inputs: GraphInputs) -> object:
        """Edges in the form :meth:`run_round` expects (here: per edge type, as given)."""
        return inputs.edges

    def run_round(
        self, r: int, h: dict[str, Tensor], vec: dict[str, Tensor], inputs: GraphInputs,
        edges: object,
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:  # fmt: skip
        """One round: per-edge-type messages, summed per target type, then per-type updates."""
        assert isinstance(edges, dict)
        messages: dict[str, tuple[Tensor, Tensor]] = {}
        for key, conv in self.convs[r].items():
            e, eb = self.edge_types[key], edges[key]
            s, d = e.source, e.target
            m_h, m_v = conv(
                (h[s], h[d]), (vec[s], vec[d]), None,
                torch.stack([eb.src, eb.tgt]), eb.weight, eb.attr, inputs.edge_vec[key],
            )  # fmt: skip
            if d in messages:
                m_h, m_v = messages[d][0] + m_h, messages[d][1] + m_v
            messages[d] = (m_h, m_v)
        h, vec = dict(h), dict(vec)
        for t, update in self.updates[r].items():
            new_h, new_v = update(h[t], vec[t], *messages[t])
            mask = inputs.mask[t]
            h[t], vec[t] = new_h * mask, new_v * mask.unsqueeze(-1)
        return h, vec

    def forward(self, inputs: GraphInputs) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Final ``(h, V)`` per node type, ``(B*N_t, C)`` and ``(B*N_t, 3, K)``."""
        h = {t: embed(inputs.scalars[t]) * inputs.mask[t] for t, embed in self.embed.items()}
        vec = {t: lift(inputs.vectors[t]) for t, lift in self.lift.items()}  # 0 on padding
        edges = self.prepare_edges(inputs) if self.rounds else None  # a spec may have no edges
        for r in range(len(self.rounds)):
            h, vec = self.run_round(r, h, vec, inputs, edges)
        return h, vec


class PonitaEncoder(HeteroVectorEncoder):
    """SE(3)-equivariant up to an orientation grid: HEPi's rounds with PONITA convolutions.

    The reference backbone (:mod:`~equigym.policies.ponita`): each node's state is a feature map
    ``x(o)`` (``C`` channels) over ``n_orientations`` grid directions, lifted from the node's
    embedded scalars ``h`` and lifted vectors ``V`` as ``x(o) = h + W (V^T o)`` (a bias-free
    linear map shared by orientations). Each round runs one :class:`~equigym.policies.ponita.
    PonitaConv` per edge type (own weights), sums the messages per target type and applies one
    :class:`~equigym.policies.ponita.PonitaUpdate` per updated type. Outputs are read back as
    the encoder's usual ``(h, V)``: ``h = mean_o x(o)`` and ``V_c = mean_o x_c(o) o`` for the
    first ``K`` channels, so HEPi's heads are shared by both backbones.

    Args:
        n_orientations: Grid size (Fibonacci lattice on the full sphere).
        Others: as :class:`HeteroVectorEncoder`.
    """

    def __init__(self, *args: object, n_orientations: int = 16, **kwargs: object) -> None:
        if n_orientations < 1:
            raise ValueError(f"n_orientations must be >= 1, got {n_orientations}")
        self.n_orientations = n_orientations
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def build_rounds(
        self, hidden_dim: int, vector_dim: int, activation: type[nn.Module], layer_norm: bool
    ) -> None:
        """Orientation grid, per-type orientation lifts, and the planned convs and updates."""
        if vector_dim > hidden_dim:
            raise ValueError(f"ponita needs vector_dim <= hidden_dim, got {vector_dim} > "
                             f"{hidden_dim}")
        self.register_buffer("grid", fibonacci_sphere(self.n_orientations), persistent=False)
        self.vector_dim = vector_dim
        self.orient = nn.ModuleDict(
            {t: nn.Linear(vector_dim, hidden_dim, bias=False) for t in self.lift}
        )
        self.convs = nn.ModuleList(
            nn.ModuleDict(
                {key: PonitaConv(hidden_dim, len(self.edge_types[key].scalar_names), activation)
                 for key in step.convs}
            )
            for step in self.plan
        )
        self.updates = nn.ModuleList(
            nn.ModuleDict({t: PonitaUpdate(hidden_dim, activation, layer_norm)
                           for t in step.updates})
            for step in self.plan
        )

    def reset_parameters(self) -> None:
        """Embeddings and lifts as the vector encoder; orientation lifts orthogonal."""
        super().reset_parameters()
        orthogonal_(self.orient, 1.0)
        for module in self.modules():
            if isinstance(module, PonitaConv | PonitaUpdate):
                module.reset_parameters()

    def forward(self, inputs: GraphInputs) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Final ``(h, V)`` per node type, ``(B*N_t, C)`` and ``(B*N_t, 3, K)``."""
        grid = self.grid
        x = {}
        for t, embed in self.embed.items():
            mask = inputs.mask[t].unsqueeze(-1)  # (M, 1, 1)
            proj = torch.einsum("mdk,od->mok", self.lift[t](inputs.vectors[t]), grid)
            x[t] = (embed(inputs.scalars[t]).unsqueeze(1) + self.orient[t](proj)) * mask
        edges = inputs.edges
        for r in range(len(self.rounds)):
            messages: dict[str, Tensor] = {}
            for key, conv in self.convs[r].items():
                e, eb = self.edge_types[key], edges[key]
                m = conv(x[e.source], torch.stack([eb.src, eb.tgt]), eb.weight,
                         inputs.edge_vec[key], grid, x[e.target].shape[0], eb.attr)
                messages[e.target] = messages[e.target] + m if e.target in messages else m
            x = dict(x)
            for t, update in self.updates[r].items():
                x[t] = update(x[t], messages[t], grid) * inputs.mask[t].unsqueeze(-1)
        k = self.vector_dim
        h = {t: v.mean(1) for t, v in x.items()}
        vec = {t: torch.einsum("mok,od->mdk", v[..., :k], grid) / grid.shape[0]
               for t, v in x.items()}
        return h, vec


class DeepSetsCritic(nn.Module):
    """Invariant: a per-node MLP of each node type's invariant inputs (DeepSets).

    HEPi's critic is a DeepSets network; this one reads only invariants (node scalars and the
    Gram matrix of each node's vector channels, which include gravity and the other global
    vectors), so the value stays exactly invariant. It costs a fraction of a message-passing
    encoder. Same interface as the encoders: ``forward(inputs) -> (h, {})``.

    Args:
        in_scalars: Invariant input width per node type.
        hidden_dim: Output width ``C``.
        activation: Activation module class.
    """

    def __init__(
        self, in_scalars: dict[str, int], hidden_dim: int, activation: type[nn.Module]
    ) -> None:
        super().__init__()
        self.mlps = nn.ModuleDict(
            {
                t: nn.Sequential(nn.Linear(d, hidden_dim), activation(),
                                 nn.Linear(hidden_dim, hidden_dim), activation())
                for t, d in in_scalars.items()
            }
        )

    def reset_parameters(self) -> None:
        """Orthogonal weights (gain sqrt 2), zero biases."""
        orthogonal_(self.mlps, HIDDEN_GAIN)

    def forward(self, inputs: GraphInputs) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Per-node features ``(B*N_t, C)``, zero on padding; no vectors."""
        return {t: mlp(inputs.scalars[t]) * inputs.mask[t] for t, mlp in self.mlps.items()}, {}


class HEPiPolicy(GraphPolicy):
    """SE(3)-equivariant (subequivariant with fixed gravity): heterogeneous vector message passing.

    **Inputs.** Every node gets as vector channels its own ``vec`` channels, its position
    relative to the masked centroid of its graph, and every global vector (gravity, target
    direction, ...), all through :func:`~equigym.policies.base.squash_vectors` (which changes
    lengths only). Its invariant inputs are its scalars, the Gram matrix of those vector channels
    (so each node knows e.g. how its hinge axes lie relative to gravity) and a node-type one-hot.
    Positions enter the layers only as differences, so the network is translation invariant.

    **Backbone.** :class:`HeteroVectorEncoder`: one
    :class:`~equigym.policies.layers.EquivariantVectorConv` per edge type and round; ``rounds``
    lists the edge-type keys of each round (default :func:`default_rounds`: on the manipulation
    graphs the reference's schedule, e.g. ``[["object-knn-object"], ["object-task-actuator",
    "actuator-agent-actuator"]]`` for ``n_layers=2``; otherwise all edge types in each of
    ``n_layers`` rounds).

    **Read-outs** (from ``spec.actions``, means exactly 0 on padded nodes):

    * scalar groups with ``axis_channels`` (locomotion torques): ``a_k = <axis_k, T_k>`` with
      ``T_k = sum_c w_kc V_c`` a learned per-node combination of the final vector channels and
      ``axis_k`` the node's input channel ``axis_channels[k]`` (zero for an empty hinge slot, so
      its action is 0);
    * vector / pseudovector groups: one per-node output vector ``sum_c w_c V_c``;
    * other scalar groups: a linear head on the node's invariant scalars.

    ``log_std`` is state independent, one parameter per channel of a scalar group and one per
    vector group (shared by x, y, z, so the Gaussian is isotropic). The value is an MLP of the
    masked mean of each node type's scalars and the global invariants (Gram matrix of the
    global vectors, e.g. ``|g|`` and ``g . d``, and the global scalars).

    **Symmetry.** For every rotation ``R`` and translation ``t`` applied to positions, vectors
    *and the global vectors*, the vector means rotate and everything else is unchanged, exactly
    up to float32 rounding. With gravity held fixed this is subequivariance (rotations about
    gravity). Pseudovector channels are treated like vectors, so reflections are not covered
    (parity is not tracked; a chiral read-out would need cross products).

    Args:
        spec: The env's graph spec.
        hidden_dim: Scalar width ``C`` of every node.
        vector_dim: Vector channels ``K`` of every node.
        n_layers: Number of rounds when ``rounds`` is not given.
        rounds: Edge-type keys of each round (overrides ``n_layers``).
        backbone: ``"vector"`` (this module's layers, exactly equivariant) or ``"ponita"``
            (:class:`PonitaEncoder`: the reference's orientation-grid convolutions, equivariant
            only up to the grid).
        n_orientations: Orientation grid size of the ``"ponita"`` backbone.
        activation: Activation name, one of :data:`~equigym.policies.base.ACTIVATIONS`.
        layer_norm: LayerNorm on the scalars after each update.
        critic: ``"encoder"`` (its own message-passing encoder, the default) or ``"deepsets"``
            (:class:`DeepSetsCritic` on node invariants: much cheaper, as HEPi's critic).
        share_encoder: One encoder for actor and critic (about half the cost; value gradients
            then shape the actor's features).
        log_std_init: Initial log standard deviation.

    Raises:
        ValueError: For bad sizes, unknown edge-type keys in ``rounds``, an unknown backbone, or
            an action group whose ``axis_channels`` do not match its channels.
    """

    encoder_class: type[HeteroVectorEncoder] = HeteroVectorEncoder
    """Encoder used for actor and critic (:class:`EMPNPolicy` swaps in the homogeneous one)."""

    def __init__(
        self,
        spec: GraphSpec,
        hidden_dim: int = 64,
        vector_dim: int = 16,
        n_layers: int = 3,
        rounds: Sequence[Sequence[str]] | None = None,
        backbone: str = "vector",
        n_orientations: int = 16,
        activation: str = "silu",
        layer_norm: bool = True,
        share_encoder: bool = False,
        log_std_init: float = -0.5,
        critic: str = "encoder",
    ) -> None:
        super().__init__(spec, log_std_init=log_std_init, isotropic_vectors=True)
        if critic not in CRITICS:
            raise ValueError(f"Unknown critic {critic!r}; choose one of {CRITICS}.")
        if critic == "deepsets" and share_encoder:
            raise ValueError("share_encoder=True shares the actor's encoder with the critic; it "
                             "cannot be combined with critic='deepsets'.")
        self.critic_kind = critic
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {backbone!r}; choose one of {BACKBONES}.")
        if hidden_dim < 1 or vector_dim < 1 or n_layers < 0:
            raise ValueError(
                f"need hidden_dim >= 1, vector_dim >= 1, n_layers >= 0; got {hidden_dim}, "
                f"{vector_dim}, {n_layers}"
            )
        self.rounds = self._check_rounds(spec, rounds, n_layers)
        act = activation_class(activation)
        self.hidden_dim, self.vector_dim, self.n_layers = hidden_dim, vector_dim, n_layers
        self.backbone, self.activation, self.share_encoder = backbone, activation, share_encoder
        n_glob = len(spec.global_vector_names)
        in_vectors = {n.name: len(n.vector_names) + 1 + n_glob for n in spec.node_types}
        in_scalars = {
            n.name: len(n.scalar_names) + k * (k + 1) // 2 + len(spec.node_types)
            for n, k in zip(spec.node_types, in_vectors.values(), strict=True)
        }
        self._one_hot = {n.name: i for i, n in enumerate(spec.node_types)}

        all_types = [n.name for n in spec.node_types]
        # Final vectors are read by vector and axis read-outs, final scalars by the other scalar
        # heads and (all types, pooled) by the critic.
        reads_vectors = [g.kind in _VECTOR_KINDS or bool(g.axis_channels) for g in spec.actions]
        vector_reads = {g.node_type for g, v in zip(spec.actions, reads_vectors, strict=True) if v}
        scalar_reads = {
            g.node_type for g, v in zip(spec.actions, reads_vectors, strict=True) if not v
        }

        self.n_orientations = n_orientations

        def encoder(scalars: Collection[str], vectors: Collection[str]) -> HeteroVectorEncoder:
            if backbone == "ponita":
                return PonitaEncoder(
                    spec, in_scalars, in_vectors, hidden_dim, vector_dim, self.rounds, act,
                    layer_norm, scalars, vectors, n_orientations=n_orientations,
                )  # fmt: skip
            return self.encoder_class(
                spec, in_scalars, in_vectors, hidden_dim, vector_dim, self.rounds, act,
                layer_norm, scalars, vectors,
            )  # fmt: skip

        if share_encoder:
            self.actor = self.critic = encoder(all_types, vector_reads)
        elif critic == "deepsets":
            self.actor = encoder(scalar_reads, vector_reads)
            self.critic = DeepSetsCritic(in_scalars, hidden_dim, act)
        else:
            self.actor = encoder(scalar_reads, vector_reads)
            self.critic = encoder(all_types, ())
        self.heads = nn.ModuleList()
        for group in spec.actions:
            if group.axis_channels and len(group.axis_channels) != group.per_node:
                raise ValueError(
                    f"action group on {group.node_type!r} has {group.per_node} channels but "
                    f"{len(group.axis_channels)} axis_channels"
                )
            if group.kind in _VECTOR_KINDS:
                self.heads.append(VectorLinear(vector_dim, 1))
            elif group.axis_channels:
                self.heads.append(VectorLinear(vector_dim, group.per_node))
            else:
                self.heads.append(nn.Linear(hidden_dim, group.per_node))
        glob_dim = n_glob * (n_glob + 1) // 2 + len(spec.global_scalar_names)
        self.value_head = nn.Sequential(
            nn.Linear(hidden_dim * len(spec.node_types) + glob_dim, hidden_dim),
            act(),
            nn.Linear(hidden_dim, 1),
        )
        self.reset_parameters()

    @staticmethod
    def _check_rounds(
        spec: GraphSpec, rounds: Sequence[Sequence[str]] | None, n_layers: int
    ) -> tuple[tuple[str, ...], ...]:
        if rounds is None:
            return default_rounds(spec, n_layers)
        valid = [e.key for e in spec.edge_types]
        out = []
        for keys in rounds:
            if isinstance(keys, str):
                raise ValueError(f"each round is a list of edge-type keys, got the string {keys!r}")
            unknown = [k for k in keys if k not in valid]
            if unknown or not keys or len(set(keys)) != len(keys):
                raise ValueError(
                    f"bad round {list(keys)}: each round lists distinct edge-type keys from "
                    f"{valid}" + (f" (unknown: {unknown})" if unknown else "")
                )
            out.append(tuple(keys))
        return tuple(out)

    def reset_parameters(self) -> None:
        """Orthogonal init: layers as in :mod:`~equigym.policies.layers`, heads 0.01, value 1."""
        super().reset_parameters()
        self.actor.reset_parameters()
        if not self.share_encoder:
            self.critic.reset_parameters()
        for head in self.heads:
            if isinstance(head, VectorLinear):
                head.reset_parameters(gain=ACTION_GAIN)
            else:
                orthogonal_(head, ACTION_GAIN)
        orthogonal_(self.value_head, HIDDEN_GAIN)
        orthogonal_(self.value_head[-1], VALUE_GAIN)

    # --- inputs ---------------------------------------------------------------------------
    def graph_inputs(self, obs: Obs) -> GraphInputs:
        """Flattened equivariant inputs of every node type (see :class:`GraphInputs`)."""
        batch = obs["action_mask"].shape[0]
        centroid = self.centroid(obs).unsqueeze(1)  # (B, 1, 3)
        glob_vec = squash_vectors(obs["global/vec"]).transpose(-1, -2)  # (B, 3, G)
        glob = [_gram(glob_vec)]
        if self.spec.global_scalar_names:
            glob.append(obs["global/x"])
        scalars, vectors, positions, masks = {}, {}, {}, {}
        n_types = len(self.spec.node_types)
        for n in self.spec.node_types:
            t = n.name
            mask = obs[f"{t}/mask"].unsqueeze(-1) > 0.5  # (B, N, 1)
            # where, not multiply: garbage (even inf/nan) in padded slots must not leak.
            pos = torch.where(mask, obs[f"{t}/pos"] - centroid, 0.0)
            own = torch.where(mask.unsqueeze(-1), obs[f"{t}/vec"], 0.0)
            vec = torch.cat(
                [
                    squash_vectors(own).transpose(-1, -2),
                    squash_vectors(pos).unsqueeze(-1),
                    glob_vec.unsqueeze(1).expand(-1, n.count, -1, -1),
                ],
                dim=-1,
            )  # (B, N, 3, K')
            vec = torch.where(mask.unsqueeze(-1), vec, 0.0)
            one_hot = torch.zeros(batch, n.count, n_types, dtype=vec.dtype, device=vec.device)
            one_hot[..., self._one_hot[t]] = 1.0
            x = torch.where(mask, obs[f"{t}/x"], 0.0)
            s = torch.where(mask, torch.cat([x, _gram(vec), one_hot], dim=-1), 0.0)
            scalars[t] = s.reshape(batch * n.count, -1)
            vectors[t] = vec.reshape(batch * n.count, 3, -1)
            positions[t] = pos.reshape(batch * n.count, 3)
            masks[t] = mask.reshape(batch * n.count, 1).to(vec.dtype)
        edges, edge_vec = {}, {}
        for e in self.spec.edge_types:
            eb = edges[e.key] = flatten_edges(obs, self.spec, e)
            index = torch.stack([eb.src, eb.tgt])
            edge_vec[e.key] = edge_vectors(positions[e.source], positions[e.target], index)
        return GraphInputs(
            scalars, vectors, positions, masks, edges, edge_vec, torch.cat(glob, dim=-1)
        )

    # --- outputs --------------------------------------------------------------------------
    def action_means(self, obs: Obs, h: dict[str, Tensor], vec: dict[str, Tensor]) -> Tensor:
        """Flat action means (B, A) from the final node states, 0 on padded nodes."""
        batch = obs["action_mask"].shape[0]
        means = []
        for group, head in zip(self.spec.actions, self.heads, strict=True):
            t = group.node_type
            if group.kind in _VECTOR_KINDS:
                out = head(vec[t])  # (B*N, 3, 1)
            elif group.axis_channels:
                axes = obs[f"{t}/vec"][:, :, list(group.axis_channels)]  # (B, N, P, 3)
                mask = obs[f"{t}/mask"].reshape(batch, -1, 1, 1) > 0.5
                axes = torch.where(mask, axes, 0.0).reshape(-1, group.per_node, 3)
                out = inner(head(vec[t]), axes.transpose(1, 2))  # <axis_k, T_k>: invariant
            else:
                out = head(h[t])
            # (B*N, per_node[, 3]) -> (B, N*per_node): node-major, channel-minor (spec layout).
            means.append(out.reshape(batch, -1))
        return torch.cat(means, dim=-1) * self.action_node_mask(obs)

    def value(self, obs: Obs, h: dict[str, Tensor], glob: Tensor) -> Tensor:
        """Value (B,) from the critic's node scalars and the global invariants."""
        batch = obs["action_mask"].shape[0]
        pooled = [
            masked_mean(h[n.name].reshape(batch, n.count, -1), obs[f"{n.name}/mask"])
            for n in self.spec.node_types
        ]
        return self.value_head(torch.cat([*pooled, glob], dim=-1)).squeeze(-1)

    def forward(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Action mean (B, A), action log std (B, A) and value (B,); see :class:`GraphPolicy`."""
        inputs = self.graph_inputs(obs)
        h, vec = self.actor(inputs)
        h_vf = h if self.share_encoder else self.critic(inputs)[0]
        batch = obs["action_mask"].shape[0]
        return (
            self.action_means(obs, h, vec),
            self.action_log_std(batch),
            self.value(obs, h_vf, inputs.glob),
        )

    def extra_repr(self) -> str:  # noqa: D102
        rounds = " | ".join(",".join(r) for r in self.rounds)
        return f"{super().extra_repr()}, backbone={self.backbone}, rounds=[{rounds}]"


__all__ = [
    "BACKBONES",
    "GraphInputs",
    "HEPiPolicy",
    "CRITICS",
    "DeepSetsCritic",
    "HeteroVectorEncoder",
    "PonitaEncoder",
    "RoundPlan",
    "default_rounds",
]

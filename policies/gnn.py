"""Plain message-passing GNN baseline over the typed edges of a graph spec."""

from __future__ import annotations

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
    mlp,
    orthogonal_,
)


class EdgeBatch(NamedTuple):
    """The real edges of one edge type across a batch, indexing flattened (B*N) node tensors.

    Padded edges are kept (fixed shapes, no host sync) but get ``weight`` 0.
    """

    src: Tensor
    """(B*E,) long: flat index ``b * N_source + i`` of each edge's source node."""
    tgt: Tensor
    """(B*E,) long: flat index ``b * N_target + j`` of each edge's target node."""
    weight: Tensor
    """(B*E, 1): 1 / in-degree of the target for real edges (mean aggregation), 0 for padding."""
    attr: Tensor | None
    """(B*E, F) scalar edge features (zero on padded edges), or ``None``."""


def flatten_edges(obs: Obs, spec: GraphSpec, edge: EdgeType) -> EdgeBatch:
    """Turn the padded ``(B, 2, E)`` index of ``edge`` into flat node indices and weights.

    Args:
        obs: Batched observation.
        spec: Its graph spec.
        edge: The edge type to read.

    Returns:
        An :class:`EdgeBatch`.
    """
    n_src, n_tgt = spec.node_type(edge.source).count, spec.node_type(edge.target).count
    # Indices arrive as float32 (SB3 casts every Box); they are exact below 2**24. Clamping
    # keeps any value in padded slots a valid gather index.
    index = obs[f"{edge.key}/index"].round().long()
    batch = index.shape[0]
    base = torch.arange(batch, device=index.device).unsqueeze(1)
    src = (index[:, 0].clamp(0, n_src - 1) + base * n_src).reshape(-1)
    tgt = (index[:, 1].clamp(0, n_tgt - 1) + base * n_tgt).reshape(-1)
    emask = (obs[f"{edge.key}/mask"] > 0.5).reshape(-1).to(obs[f"{edge.key}/mask"].dtype)
    degree = torch.zeros(batch * n_tgt, dtype=emask.dtype, device=emask.device)
    degree.index_add_(0, tgt, emask)
    weight = (emask / degree[tgt].clamp_min(1.0)).unsqueeze(-1)
    attr = None
    if edge.scalar_names:
        raw = obs[f"{edge.key}/attr"].reshape(batch * edge.count, -1)
        attr = torch.where(emask.unsqueeze(-1) > 0.5, raw, 0.0)
    return EdgeBatch(src, tgt, weight, attr)


class MessagePassing(nn.Module):
    """Not equivariant: typed message passing on flattened node tensors.

    Each node type has its own input embedding. In each layer, every edge type ``s -r-> d``
    averages, at each target node, the source embeddings of its real edges (plus a linear map
    of the edge's scalar features, if it has any); each node type then updates its embedding
    from itself and one average per incoming edge type, with a type-specific linear layer:
    ``h <- LN(h + act(U_t [h, m_r1, m_r2, ...]))`` (relation-typed GraphSAGE with mean
    aggregation). Aggregating before transforming keeps the per-edge work to a gather and an
    ``index_add_``, which is what makes it affordable for PPO on a CPU.

    Args:
        spec: The graph spec (node and edge types).
        in_dims: Input feature width per node type name.
        hidden_dim: Node embedding width.
        n_layers: Message-passing layers.
        activation: Activation module class.
        layer_norm: Whether to apply LayerNorm after each residual update.
    """

    def __init__(
        self,
        spec: GraphSpec,
        in_dims: dict[str, int],
        hidden_dim: int,
        n_layers: int,
        activation: type[nn.Module],
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.spec = spec
        h = hidden_dim
        self.embed = nn.ModuleDict(
            {name: nn.Sequential(nn.Linear(d, h), activation()) for name, d in in_dims.items()}
        )
        self._incoming = {
            n.name: [e.key for e in spec.edge_types if e.target == n.name] for n in spec.node_types
        }
        self.edge_proj = nn.ModuleList()
        self.updates = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(n_layers):
            self.edge_proj.append(
                nn.ModuleDict(
                    {
                        e.key: nn.Linear(len(e.scalar_names), h, bias=False)
                        for e in spec.edge_types
                        if e.scalar_names
                    }
                )
            )
            self.updates.append(
                nn.ModuleDict(
                    {
                        name: nn.Sequential(nn.Linear(h * (1 + len(keys)), h), activation())
                        for name, keys in self._incoming.items()
                    }
                )
            )
            self.norms.append(
                nn.ModuleDict(
                    {
                        n.name: nn.LayerNorm(h) if layer_norm else nn.Identity()
                        for n in spec.node_types
                    }
                )
            )

    def forward(self, inputs: dict[str, Tensor], edges: dict[str, EdgeBatch]) -> dict[str, Tensor]:
        """Node embeddings per node type, each (B*N_t, hidden_dim).

        Args:
            inputs: Flattened node inputs per node type, (B*N_t, in_dim_t).
            edges: :class:`EdgeBatch` per edge-type key.
        """
        h = {name: self.embed[name](x) for name, x in inputs.items()}
        for edge_proj, updates, norms in zip(self.edge_proj, self.updates, self.norms, strict=True):
            aggregated: dict[str, Tensor] = {}
            for e in self.spec.edge_types:
                eb = edges[e.key]
                msg = h[e.source][eb.src]
                if eb.attr is not None:
                    msg = msg + edge_proj[e.key](eb.attr)
                agg = torch.zeros_like(h[e.target])
                aggregated[e.key] = agg.index_add_(0, eb.tgt, msg * eb.weight)
            h = {
                name: norms[name](
                    hn
                    + updates[name](
                        torch.cat([hn, *(aggregated[k] for k in self._incoming[name])], dim=-1)
                    )
                )
                for name, hn in h.items()
            }
        return h


class GNNPolicy(GraphPolicy):
    """Not equivariant: a plain message-passing GNN over the spec's typed edges.

    Node inputs are :meth:`~equigym.policies.base.GraphPolicy.node_features` (world-frame vector
    components as plain numbers) concatenated with the global features. Separate actor and critic
    :class:`MessagePassing` encoders (or one shared encoder) run on flattened ``(B*N, F)`` node
    tensors with no Python loop over samples. The actor reads each action group with a per-node
    linear head on the group's node type (``per_node`` outputs per node, laid out as
    ``offset + node * per_node + channel``), so one network drives any morphology. The critic
    mean-pools the real nodes of each node type and maps them, with the globals, to the value.
    Padded nodes cannot change real outputs: their features are zeroed, padded edges carry
    weight 0, pooling is masked, and their action means are zero.

    Args:
        spec: The env's graph spec.
        hidden_dim: Node embedding width.
        n_layers: Message-passing layers.
        activation: Activation name, one of :data:`~equigym.policies.base.ACTIVATIONS`.
        layer_norm: LayerNorm after each residual update.
        share_encoder: One encoder for actor and critic (faster, but value gradients then shape
            the actor's features).
        log_std_init: Initial log standard deviation of every action channel.
    """

    def __init__(
        self,
        spec: GraphSpec,
        hidden_dim: int = 64,
        n_layers: int = 3,
        activation: str = "tanh",
        layer_norm: bool = True,
        share_encoder: bool = False,
        log_std_init: float = -0.5,
    ) -> None:
        super().__init__(spec, log_std_init=log_std_init)
        if hidden_dim < 1 or n_layers < 0:
            raise ValueError(
                f"need hidden_dim >= 1 and n_layers >= 0, got {hidden_dim}, {n_layers}"
            )
        act = activation_class(activation)
        self.hidden_dim, self.n_layers, self.activation = hidden_dim, n_layers, activation
        self.share_encoder = share_encoder
        g = self.global_feature_dim
        in_dims = {n.name: self.node_feature_dim(n) + g for n in spec.node_types}
        self.actor = MessagePassing(spec, in_dims, hidden_dim, n_layers, act, layer_norm)
        self.critic = (
            self.actor
            if share_encoder
            else MessagePassing(spec, in_dims, hidden_dim, n_layers, act, layer_norm)
        )
        self.mean_heads = nn.ModuleList(nn.Linear(hidden_dim, a.per_node) for a in spec.actions)
        self.value_head = nn.Sequential(
            mlp(hidden_dim * len(spec.node_types) + g, hidden_dim, 1, act),
            nn.Linear(hidden_dim, 1),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal init (gain sqrt(2)), small action heads (0.01), value output gain 1."""
        super().reset_parameters()
        for module in (self.actor, self.critic, self.value_head):
            orthogonal_(module, HIDDEN_GAIN)
            for m in module.modules():
                if isinstance(m, nn.LayerNorm):
                    m.reset_parameters()
        orthogonal_(self.value_head[-1], VALUE_GAIN)
        orthogonal_(self.mean_heads, ACTION_GAIN)

    def encode_inputs(self, obs: Obs) -> tuple[dict[str, Tensor], dict[str, EdgeBatch], Tensor]:
        """Flattened node inputs per node type (B*N_t, F_t + G), edges per key, globals (B, G)."""
        centroid = self.centroid(obs)
        glob = self.global_features(obs)
        inputs = {}
        for n in self.spec.node_types:
            feats = self.node_features(obs, n, centroid)
            g = glob.unsqueeze(1).expand(-1, n.count, -1)
            inputs[n.name] = torch.cat([feats, g], dim=-1).reshape(
                -1, feats.shape[-1] + g.shape[-1]
            )
        edges = {e.key: flatten_edges(obs, self.spec, e) for e in self.spec.edge_types}
        return inputs, edges, glob

    def forward(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Action mean (B, A), action log std (B, A) and value (B,); see :class:`GraphPolicy`."""
        inputs, edges, glob = self.encode_inputs(obs)
        batch = obs["action_mask"].shape[0]
        h_pi = self.actor(inputs, edges)
        h_vf = h_pi if self.share_encoder else self.critic(inputs, edges)
        means = []
        for group, head in zip(self.spec.actions, self.mean_heads, strict=True):
            # (B*N, per_node) -> (B, N*per_node): node-major, channel-minor, as the spec lays out.
            means.append(head(h_pi[group.node_type]).reshape(batch, -1))
        mean = torch.cat(means, dim=-1) * self.action_node_mask(obs)
        pooled = [
            masked_mean(h_vf[n.name].reshape(batch, n.count, -1), obs[f"{n.name}/mask"])
            for n in self.spec.node_types
        ]
        value = self.value_head(torch.cat([*pooled, glob], dim=-1))
        return mean, self.action_log_std(batch), value.squeeze(-1)

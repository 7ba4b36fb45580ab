"""EMPN: HEPi's equivariant backbone on the homogeneous graph (the baseline of the HEPi paper)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from equigym.graph import GraphSpec
from equigym.policies.hepi import GraphInputs, HEPiPolicy, HeteroVectorEncoder, RoundPlan
from equigym.policies.layers import EquivariantVectorConv, EquivariantVectorUpdate


class UnionEdges(NamedTuple):
    """All real edges of all edge types, indexing the concatenation of all node types."""

    index: Tensor
    """(2, E) long: (source, target) rows into the concatenated node tensors."""
    weight: Tensor
    """(E, 1): 1 / in-degree over the union for real edges, 0 for padded ones."""
    attr: Tensor | None
    """(E, sum F_e): each edge type's scalar features in its own block of columns, or ``None``."""
    vec: Tensor
    """(E, 3) squashed ``p_source - p_target``."""


class HomogeneousVectorEncoder(HeteroVectorEncoder):
    """E(3)-equivariant: the same vector layers on the union of all edge types, weights shared.

    Node types keep their own input embedding (their inputs differ in width), then all nodes
    form one set and every round runs one :class:`~equigym.policies.layers.EquivariantVectorConv`
    over the union of the edges (mean over all in-edges, whatever their type) and one
    :class:`~equigym.policies.layers.EquivariantVectorUpdate` shared by all node types. Node
    types remain distinguishable only through the type one-hot in the inputs.
    """

    def plan_rounds(self) -> tuple[list[RoundPlan], set[str]]:
        """Every round: all edge types, all node types; vectors skipped only where never read."""
        types = [n.name for n in self.spec.node_types]
        keys = tuple(self.edge_types)
        last = len(self.rounds) - 1
        plan = [
            RoundPlan(keys, dict.fromkeys(types, r < last or bool(self.vector_outputs)))
            for r in range(len(self.rounds))
        ]
        return plan, set(types)

    def build_rounds(
        self, hidden_dim: int, vector_dim: int, activation: type[nn.Module], layer_norm: bool
    ) -> None:
        """One shared convolution and one shared update per round."""
        edge_dim = sum(len(e.scalar_names) for e in self.spec.edge_types)
        self.convs = nn.ModuleList(
            EquivariantVectorConv(hidden_dim, vector_dim, edge_dim, activation)
            for _ in self.plan
        )
        self.updates = nn.ModuleList(
            EquivariantVectorUpdate(
                hidden_dim, vector_dim, activation, layer_norm, any(step.updates.values())
            )
            for step in self.plan
        )

    def prepare_edges(self, inputs: GraphInputs) -> UnionEdges:
        """Concatenate every edge type's edges, re-indexed into the concatenated node set."""
        offset, start = {}, 0
        for t, x in inputs.scalars.items():
            offset[t] = start
            start += x.shape[0]
        attr_dim = sum(len(e.scalar_names) for e in self.spec.edge_types)
        src, tgt, real, attrs, col = [], [], [], [], 0
        for e in self.spec.edge_types:
            eb = inputs.edges[e.key]
            src.append(eb.src + offset[e.source])
            tgt.append(eb.tgt + offset[e.target])
            real.append((eb.weight > 0).to(eb.weight.dtype))
            if attr_dim:
                block = eb.weight.new_zeros(eb.src.shape[0], attr_dim)
                if eb.attr is not None:
                    block[:, col : col + eb.attr.shape[1]] = eb.attr
                    col += eb.attr.shape[1]
                attrs.append(block)
        index = torch.stack([torch.cat(src), torch.cat(tgt)])
        is_real = torch.cat(real)
        degree = is_real.new_zeros(start).index_add_(0, index[1], is_real.squeeze(-1))
        weight = is_real / degree[index[1]].clamp_min(1.0).unsqueeze(-1)
        edge_vec = torch.cat([inputs.edge_vec[e.key] for e in self.spec.edge_types])
        return UnionEdges(index, weight, torch.cat(attrs) if attr_dim else None, edge_vec)

    def run_round(
        self, r: int, h: dict[str, Tensor], vec: dict[str, Tensor], inputs: GraphInputs,
        edges: object,
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:  # fmt: skip
        """One round on the concatenated node set, split back per node type."""
        assert isinstance(edges, UnionEdges)
        names = list(h)
        all_h, all_v = torch.cat([h[t] for t in names]), torch.cat([vec[t] for t in names])
        mask = torch.cat([inputs.mask[t] for t in names])
        m_h, m_v = self.convs[r](
            all_h, all_v, None, edges.index, edges.weight, edges.attr, edges.vec
        )
        all_h, all_v = self.updates[r](all_h, all_v, m_h, m_v)
        all_h, all_v = all_h * mask, all_v * mask.unsqueeze(-1)
        sizes = [h[t].shape[0] for t in names]
        return (
            dict(zip(names, all_h.split(sizes), strict=True)),
            dict(zip(names, all_v.split(sizes), strict=True)),
        )


class EMPNPolicy(HEPiPolicy):
    """SE(3)-equivariant (subequivariant with fixed gravity): HEPi's backbone, homogeneous graph.

    The "EMPN" baseline of the HEPi paper: the same inputs, vector layers, read-outs, ``log_std``
    and critic as :class:`~equigym.policies.hepi.HEPiPolicy`, but message passing ignores edge
    and node types (:class:`HomogeneousVectorEncoder`): ``n_layers`` rounds of one shared
    convolution over the union of all edge types. Symmetry as for HEPi.

    Args:
        spec: The env's graph spec.
        hidden_dim: Scalar width of every node.
        vector_dim: Vector channels of every node.
        n_layers: Rounds of message passing.
        activation: Activation name, one of :data:`~equigym.policies.base.ACTIVATIONS`.
        layer_norm: LayerNorm on the scalars after each update.
        share_encoder: One encoder for actor and critic.
        log_std_init: Initial log standard deviation.
    """

    encoder_class = HomogeneousVectorEncoder

    def __init__(
        self,
        spec: GraphSpec,
        hidden_dim: int = 64,
        vector_dim: int = 16,
        n_layers: int = 3,
        activation: str = "silu",
        layer_norm: bool = True,
        share_encoder: bool = False,
        log_std_init: float = -0.5,
    ) -> None:
        super().__init__(
            spec,
            hidden_dim=hidden_dim,
            vector_dim=vector_dim,
            n_layers=n_layers,
            activation=activation,
            layer_norm=layer_norm,
            share_encoder=share_encoder,
            log_std_init=log_std_init,
        )


__all__ = ["EMPNPolicy", "HomogeneousVectorEncoder", "UnionEdges"]

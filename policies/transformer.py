"""Transformer baseline over node tokens (the Transformer baseline of the HEPi paper)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equigym.graph import GraphSpec
from equigym.policies.base import (
    ACTION_GAIN,
    HIDDEN_GAIN,
    VALUE_GAIN,
    GraphPolicy,
    Obs,
    activation_class,
    masked_mean,
    orthogonal_,
)


class TransformerPolicy(GraphPolicy):
    """Not equivariant: a Transformer encoder over one token per node, with padding masks.

    Each node's token is :meth:`~equigym.policies.base.GraphPolicy.node_features` (scalars,
    position relative to the masked centroid and the vector channels, world-frame components as
    plain numbers), the global features broadcast to every node, and a node-type one-hot; a
    per-type ``Linear`` maps it to ``d_model``. All tokens of all node types go through one
    ``nn.TransformerEncoder`` (no positional encoding: the token order carries no meaning) with
    a key padding mask, so padded nodes are never attended to. Edges are not read. Per-node
    linear heads on each action group's node type give the means (laid out as the spec says);
    the critic (its own encoder unless ``share_encoder``) mean-pools the real tokens into an MLP.

    Args:
        spec: The env's graph spec.
        d_model: Token width.
        n_layers: Encoder layers.
        n_heads: Attention heads.
        dim_feedforward: Width of each layer's feed-forward block.
        activation: Activation name of the value MLP.
        share_encoder: One encoder for actor and critic.
        log_std_init: Initial log standard deviation of every action channel.
    """

    def __init__(
        self,
        spec: GraphSpec,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        dim_feedforward: int = 64,
        activation: str = "tanh",
        share_encoder: bool = False,
        log_std_init: float = -0.5,
    ) -> None:
        super().__init__(spec, log_std_init=log_std_init)
        if d_model < 1 or n_layers < 1 or n_heads < 1 or d_model % n_heads:
            raise ValueError(
                f"need d_model, n_layers, n_heads >= 1 and n_heads dividing d_model; got "
                f"{d_model}, {n_layers}, {n_heads}"
            )
        act = activation_class(activation)
        self.d_model, self.n_layers, self.n_heads = d_model, n_layers, n_heads
        self.activation, self.share_encoder = activation, share_encoder
        n_types = len(spec.node_types)
        g = self.global_feature_dim

        def encoder() -> nn.Module:
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, dim_feedforward, dropout=0.0, batch_first=True
            )
            # No nested tensors: they change numerics between train and eval mode and warn.
            return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

        def embed() -> nn.ModuleDict:
            return nn.ModuleDict(
                {
                    n.name: nn.Linear(self.node_feature_dim(n) + g + n_types, d_model)
                    for n in spec.node_types
                }
            )

        self.actor_embed, self.actor = embed(), encoder()
        self.critic_embed = self.actor_embed if share_encoder else embed()
        self.critic = self.actor if share_encoder else encoder()
        self.mean_heads = nn.ModuleList(nn.Linear(d_model, a.per_node) for a in spec.actions)
        self.value_head = nn.Sequential(nn.Linear(d_model, d_model), act(), nn.Linear(d_model, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal embeddings and heads (value 1, actions 0.01); PyTorch's encoder init."""
        super().reset_parameters()
        for embed in (self.actor_embed, self.critic_embed):
            orthogonal_(embed, HIDDEN_GAIN)
        for enc in (self.actor, self.critic):
            for m in enc.modules():
                if isinstance(m, nn.MultiheadAttention):
                    m._reset_parameters()
                elif isinstance(m, nn.Linear | nn.LayerNorm):
                    m.reset_parameters()
        orthogonal_(self.value_head, HIDDEN_GAIN)
        orthogonal_(self.value_head[-1], VALUE_GAIN)
        orthogonal_(self.mean_heads, ACTION_GAIN)

    def tokens(self, obs: Obs) -> tuple[dict[str, Tensor], Tensor]:
        """Raw token features per node type (B, N_t, F_t) and the padding mask (B, sum N_t)."""
        centroid = self.centroid(obs)
        glob = self.global_features(obs)
        n_types = len(self.spec.node_types)
        out = {}
        for i, n in enumerate(self.spec.node_types):
            feats = self.node_features(obs, n, centroid)
            one_hot = feats.new_zeros(*feats.shape[:2], n_types)
            one_hot[..., i] = 1.0
            g = glob.unsqueeze(1).expand(-1, n.count, -1)
            mask = obs[f"{n.name}/mask"].unsqueeze(-1) > 0.5
            out[n.name] = torch.where(mask, torch.cat([feats, g, one_hot], dim=-1), 0.0)
        padding = torch.cat([obs[f"{n.name}/mask"] < 0.5 for n in self.spec.node_types], dim=1)
        return out, padding

    def encode(
        self, feats: dict[str, Tensor], padding: Tensor, embed: nn.ModuleDict, encoder: nn.Module
    ) -> Tensor:
        """Encoded tokens (B, sum N_t, d_model), node types in spec order."""
        x = torch.cat([embed[t](f) for t, f in feats.items()], dim=1)
        return encoder(x, src_key_padding_mask=padding)

    def forward(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Action mean (B, A), action log std (B, A) and value (B,); see :class:`GraphPolicy`."""
        feats, padding = self.tokens(obs)
        batch = padding.shape[0]
        z_pi = self.encode(feats, padding, self.actor_embed, self.actor)
        z_vf = z_pi if self.share_encoder else self.encode(
            feats, padding, self.critic_embed, self.critic
        )
        start, slices = 0, {}
        for n in self.spec.node_types:
            slices[n.name] = slice(start, start + n.count)
            start += n.count
        means = [
            head(z_pi[:, slices[group.node_type]]).reshape(batch, -1)
            for group, head in zip(self.spec.actions, self.mean_heads, strict=True)
        ]
        mean = torch.cat(means, dim=-1) * self.action_node_mask(obs)
        # where inside masked_mean: padded tokens' outputs (finite or not) are ignored.
        pooled = masked_mean(z_vf, (~padding).to(z_vf.dtype))
        value = self.value_head(pooled).squeeze(-1)
        return mean, self.action_log_std(batch), value


__all__ = ["TransformerPolicy"]

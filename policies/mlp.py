"""Padded MLP baseline: one flat vector of all (masked) node features."""

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
    mlp,
    orthogonal_,
)


class MLPPolicy(GraphPolicy):
    """Not equivariant: an MLP over the flattened, padded node features of the whole graph.

    The input is the concatenation, over node types and node slots, of
    :meth:`~equigym.policies.base.GraphPolicy.node_features` (zero on padded nodes) plus the global
    features; world-frame vector components are plain inputs, and the edges are not read (the
    morphology is only implicit in which slots are filled). Separate actor and critic MLPs map it
    to the flat action mean and to the value. Padded nodes cannot change the outputs because
    their features are replaced by zeros before the first layer, and their action means are zero.

    Args:
        spec: The env's graph spec.
        hidden_dim: Width of each hidden layer.
        n_layers: Hidden layers of the actor and of the critic.
        activation: Activation name, one of :data:`~equigym.policies.base.ACTIVATIONS`.
        log_std_init: Initial log standard deviation of every action channel.
    """

    def __init__(
        self,
        spec: GraphSpec,
        hidden_dim: int = 256,
        n_layers: int = 2,
        activation: str = "tanh",
        log_std_init: float = -0.5,
    ) -> None:
        super().__init__(spec, log_std_init=log_std_init)
        if hidden_dim < 1 or n_layers < 1:
            raise ValueError(f"hidden_dim and n_layers must be >= 1, got {hidden_dim}, {n_layers}")
        act = activation_class(activation)
        self.hidden_dim, self.n_layers, self.activation = hidden_dim, n_layers, activation
        in_dim = self.global_feature_dim + sum(
            n.count * self.node_feature_dim(n) for n in spec.node_types
        )
        self.actor = mlp(in_dim, hidden_dim, n_layers, act)
        self.mean_head = nn.Linear(hidden_dim, self.action_dim)
        self.critic = mlp(in_dim, hidden_dim, n_layers, act)
        self.value_head = nn.Linear(hidden_dim, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal init: hidden gain sqrt(2), action head 0.01, value head 1."""
        super().reset_parameters()
        orthogonal_(self.actor, HIDDEN_GAIN)
        orthogonal_(self.critic, HIDDEN_GAIN)
        orthogonal_(self.mean_head, ACTION_GAIN)
        orthogonal_(self.value_head, VALUE_GAIN)

    def flat_features(self, obs: Obs) -> Tensor:
        """The MLP input: all node features flattened, then the globals, shape (B, D)."""
        centroid = self.centroid(obs)
        parts = [
            self.node_features(obs, n, centroid).flatten(start_dim=1) for n in self.spec.node_types
        ]
        parts.append(self.global_features(obs))
        return torch.cat(parts, dim=-1)

    def forward(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Action mean (B, A), action log std (B, A) and value (B,); see :class:`GraphPolicy`."""
        feats = self.flat_features(obs)
        mean = self.mean_head(self.actor(feats)) * self.action_node_mask(obs)
        value = self.value_head(self.critic(feats)).squeeze(-1)
        return mean, self.action_log_std(feats.shape[0]), value

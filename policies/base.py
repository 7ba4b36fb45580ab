"""Shared plumbing of equigym's graph policies: input features, action layout, masked pooling.

Every policy maps a batched observation dict (keys exactly as :attr:`GraphSpec.keys`, ``float32``
tensors with a leading batch axis) to the mean and log standard deviation of a diagonal Gaussian
over the flat action, and a value estimate. Nothing here knows about a particular env: node types,
edge types and action groups all come from the :class:`~equigym.graph.GraphSpec`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from equigym.graph import GraphSpec, NodeType

Obs = Mapping[str, Tensor]
"""A batched observation: key → tensor of shape ``(B, *KeySpec.shape)``."""

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}
"""Activation names accepted by the policies' ``activation`` argument."""

HIDDEN_GAIN = math.sqrt(2.0)
"""Orthogonal-init gain of hidden layers (the usual PPO choice)."""
ACTION_GAIN = 0.01
"""Orthogonal-init gain of the action-mean layer: initial means start near zero."""
VALUE_GAIN = 1.0
"""Orthogonal-init gain of the value layer."""


def activation_class(name: str) -> type[nn.Module]:
    """The activation module class called ``name``.

    Raises:
        ValueError: For an unknown name (the message lists the valid ones).
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}."
        ) from None


def squash_vectors(v: Tensor) -> Tensor:
    """Shrink the length of each 3-vector (last axis) from ``r`` to ``log(1 + r)``.

    Equivariant under rotations and reflections (only the length changes), so it treats all axes
    alike, unlike per-axis normalisation. It keeps fast velocities and far positions in a range
    where ``tanh`` networks are not saturated.

    Args:
        v: Tensor of shape ``(..., 3)``.

    Returns:
        Tensor of the same shape and direction.
    """
    norm = v.norm(dim=-1, keepdim=True)
    # log1p(r) / r -> 1 as r -> 0; the where avoids 0/0 for zero (padded) vectors.
    scale = torch.where(
        norm > 1e-6, torch.log1p(norm) / norm.clamp_min(1e-6), torch.ones_like(norm)
    )
    return v * scale


def mlp(in_dim: int, hidden_dim: int, n_layers: int, activation: type[nn.Module]) -> nn.Sequential:
    """``n_layers`` of ``Linear(·, hidden_dim)`` each followed by ``activation``."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim), activation()]
    return nn.Sequential(*layers)


def orthogonal_(module: nn.Module, gain: float) -> None:
    """Orthogonal weights with ``gain`` and zero biases for every ``Linear`` inside ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` (B, N, F) over the nodes where ``mask`` (B, N) is 1; zero if none."""
    weight = mask.unsqueeze(-1)
    total = (torch.where(weight > 0.5, values, 0.0)).sum(dim=1)
    return total / weight.sum(dim=1).clamp_min(1.0)


class GraphPolicy(nn.Module):
    """Not equivariant by itself: base class of policies over an equigym graph observation.

    Subclasses implement :meth:`forward`. The base class provides what every policy needs:

    * the input features of each node type and of the globals (:meth:`node_features`,
      :meth:`global_features`), with padded nodes zeroed so that they cannot leak into outputs;
    * a state-independent ``log_std`` parameter per (action group, channel), shared by all nodes
      of the group's node type, expanded to the flat action by :meth:`action_log_std`;
    * :meth:`action_node_mask`, which zeroes the mean of actions on padded nodes.

    Args:
        spec: The env's graph spec (``env.unwrapped.graph_spec``).
        log_std_init: Initial log standard deviation of every action channel.
        isotropic_vectors: One ``log_std`` per vector / pseudovector action group, shared by its
            x, y, z (a per-axis std does not rotate with the scene: equivariant policies need
            this); scalar groups keep one per channel.
    """

    def __init__(
        self, spec: GraphSpec, log_std_init: float = -0.5, isotropic_vectors: bool = False
    ) -> None:
        super().__init__()
        self.spec = spec
        self.action_dim = spec.action_dim
        self.log_std_init = float(log_std_init)
        tied = [isotropic_vectors and g.kind in ("vector", "pseudovector") for g in spec.actions]
        channel_offsets = [0]
        for group, tie in zip(spec.actions, tied, strict=True):
            channel_offsets.append(channel_offsets[-1] + (1 if tie else group.per_node))
        self.log_std = nn.Parameter(torch.full((channel_offsets[-1],), self.log_std_init))
        layout = torch.as_tensor(spec.action_layout(), dtype=torch.long).reshape(-1, 3)
        offsets = torch.as_tensor(channel_offsets[:-1], dtype=torch.long)
        is_tied = torch.as_tensor(tied, dtype=torch.bool)[layout[:, 0]]
        channel = torch.where(is_tied, 0, layout[:, 2])
        # Flat action index -> its (group, channel) parameter, and -> its node's slot in the
        # concatenation of all node types' masks (used to zero padded nodes' means).
        self.register_buffer("_log_std_index", offsets[layout[:, 0]] + channel, persistent=False)
        node_offset = {}
        start = 0
        for n in spec.node_types:
            node_offset[n.name] = start
            start += n.count
        group_node_offset = torch.as_tensor(
            [node_offset[g.node_type] for g in spec.actions], dtype=torch.long
        )
        self.register_buffer(
            "_action_node_index", group_node_offset[layout[:, 0]] + layout[:, 1], persistent=False
        )

    # --- inputs ---------------------------------------------------------------------------
    @staticmethod
    def node_feature_dim(node_type: NodeType) -> int:
        """Width of :meth:`node_features` for ``node_type``: scalars, position, vectors."""
        return len(node_type.scalar_names) + 3 + 3 * len(node_type.vector_names)

    @property
    def global_feature_dim(self) -> int:
        """Width of :meth:`global_features`."""
        return 3 * len(self.spec.global_vector_names) + len(self.spec.global_scalar_names)

    def centroid(self, obs: Obs) -> Tensor:
        """Mean world position of all real nodes of all types, shape (B, 3)."""
        total: Tensor | float = 0.0
        count: Tensor | float = 0.0
        for n in self.spec.node_types:
            mask = obs[f"{n.name}/mask"].unsqueeze(-1)
            total = total + torch.where(mask > 0.5, obs[f"{n.name}/pos"], 0.0).sum(dim=1)
            count = count + mask.sum(dim=1)
        assert isinstance(total, Tensor) and isinstance(count, Tensor)  # spec has node types
        return total / count.clamp_min(1.0)

    def node_features(self, obs: Obs, node_type: NodeType, centroid: Tensor) -> Tensor:
        """Input features of every node of ``node_type``, shape (B, N, :meth:`node_feature_dim`).

        The features are the scalars, the position relative to ``centroid`` and the vector
        channels, world-frame components taken as plain numbers (so not equivariant); positions
        and vectors go through :func:`squash_vectors`. Padded nodes get all-zero features.
        """
        name = node_type.name
        x = obs[f"{name}/x"]
        pos = squash_vectors(obs[f"{name}/pos"] - centroid.unsqueeze(1))
        vec = squash_vectors(obs[f"{name}/vec"]).flatten(start_dim=2)
        feats = torch.cat([x, pos, vec], dim=-1)
        mask = obs[f"{name}/mask"].unsqueeze(-1)
        # where, not multiply: garbage (even inf/nan) in padded slots must not reach the outputs.
        return torch.where(mask > 0.5, feats, 0.0)

    def global_features(self, obs: Obs) -> Tensor:
        """Global vectors (squashed components) and global scalars, shape (B, G)."""
        parts = [squash_vectors(obs["global/vec"]).flatten(start_dim=1)]
        if self.spec.global_scalar_names:
            parts.append(obs["global/x"])
        return torch.cat(parts, dim=-1)

    # --- outputs --------------------------------------------------------------------------
    def action_node_mask(self, obs: Obs) -> Tensor:
        """(B, A): 1 where the action's node is a real node, 0 on padded nodes."""
        masks = torch.cat([obs[f"{n.name}/mask"] for n in self.spec.node_types], dim=-1)
        return masks[:, self._action_node_index]

    def action_log_std(self, batch_size: int) -> Tensor:
        """The state-independent log standard deviation expanded to shape (B, A)."""
        return self.log_std[self._log_std_index].unsqueeze(0).expand(batch_size, -1)

    def forward(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Action mean (B, A), action log std (B, A) and value (B,) of a batched observation.

        Args:
            obs: Batched observation dict, ``float32`` tensors shaped ``(B, *KeySpec.shape)``.
        """
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Re-initialise ``log_std`` (subclasses also re-initialise their layers)."""
        nn.init.constant_(self.log_std, self.log_std_init)

    def extra_repr(self) -> str:  # noqa: D102 (nn.Module's repr hook)
        nodes = ", ".join(f"{n.name}×{n.count}" for n in self.spec.node_types)
        return f"nodes=[{nodes}], action_dim={self.action_dim}"

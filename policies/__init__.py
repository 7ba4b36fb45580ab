"""Graph policies for equigym observations (plain torch, no RL library).

Build one from an env's graph spec with :func:`make`::

    import gymnasium as gym
    import equigym
    from equigym import policies

    env = gym.make("equigym/Hopper3D-v0")
    net = policies.make("gnn", env.unwrapped.graph_spec, hidden_dim=64)
    mean, log_std, value = net(batched_obs)  # (B, A), (B, A), (B,)

Every policy takes the batched observation dict (keys as ``GraphSpec.keys``, leading batch axis)
and returns the mean and log standard deviation of a diagonal Gaussian over the flat action and a
value estimate. :mod:`equigym.agents` wraps them for Stable-Baselines3.
"""

from __future__ import annotations

import inspect
from typing import Any

from equigym.graph import GraphSpec
from equigym.policies.base import ACTIVATIONS, GraphPolicy, squash_vectors
from equigym.policies.empn import EMPNPolicy
from equigym.policies.gnn import GNNPolicy, MessagePassing
from equigym.policies.hepi import HEPiPolicy
from equigym.policies.mlp import MLPPolicy
from equigym.policies.set import SETPolicy
from equigym.policies.transformer import TransformerPolicy

POLICIES: dict[str, type[GraphPolicy]] = {
    "mlp": MLPPolicy,
    "gnn": GNNPolicy,
    "transformer": TransformerPolicy,
    "hepi": HEPiPolicy,
    "empn": EMPNPolicy,
    "set": SETPolicy,
}
"""Policy name → class, the names :func:`make` accepts."""

EQUIVARIANT: frozenset[str] = frozenset({"hepi", "empn", "set"})
"""Names of the policies that are exactly equivariant by construction: the test suite holds
them to 1e-5 on every registered env (the others are baselines whose error is only reported)."""


def make(name: str, spec: GraphSpec, **cfg: Any) -> GraphPolicy:
    """Build the policy called ``name`` for the graph spec ``spec``.

    Args:
        name: One of :data:`POLICIES` (``"mlp"``, ``"gnn"``, ``"transformer"``, ``"hepi"``,
            ``"empn"``, ``"set"``).
        spec: The env's graph spec (``env.unwrapped.graph_spec``).
        **cfg: Keyword arguments of the policy class (e.g. ``hidden_dim``, ``n_layers``).

    Returns:
        A freshly initialised :class:`GraphPolicy`.

    Raises:
        ValueError: For an unknown policy name or an option the policy does not take (the
            message lists the valid ones).
    """
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(
            f"Unknown policy {name!r}; choose one of {', '.join(sorted(POLICIES))}."
        ) from None
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "spec")]
    unknown = sorted(k for k in cfg if k not in valid)
    if unknown:
        raise ValueError(
            f"Policy {name!r} got unknown option(s) {unknown}; valid options: {', '.join(valid)}."
        )
    return cls(spec, **cfg)


__all__ = [
    "ACTIVATIONS",
    "EMPNPolicy",
    "EQUIVARIANT",
    "GNNPolicy",
    "HEPiPolicy",
    "GraphPolicy",
    "MLPPolicy",
    "MessagePassing",
    "POLICIES",
    "SETPolicy",
    "TransformerPolicy",
    "make",
    "squash_vectors",
]

"""PONITA-style separable convolutions in position-orientation space: HEPi's faithful backbone.

PONITA (Bekkers, Vadgama, Hesselink, van der Linden, Romero, "Fast, Expressive SE(n) Equivariant
Networks through Weight-Sharing in Position-Orientation Space", ICLR 2024,
https://arxiv.org/abs/2310.02970) gives every node a feature map over a grid of orientations
``o`` on the sphere. For an edge ``j -> i`` with ``d = p_j - p_i`` the pair ``(o . d,
|d - (o . d) o|)`` is invariant under rotating both ``d`` and ``o``, so kernels built from it are
shared across orientations (weight sharing = equivariance). A convolution is separable: a
spatial, depth-wise message ``x_j(o) * k(d, o)``, then a convolution over the sphere
``y(o') = sum_o x(o) K(o . o') / N``.

**Symmetry.** The grid is finite (Fibonacci lattice on the full sphere, as HEPi uses for 3-D
tasks, not its upper-hemisphere grid), so the layers are translation invariant exactly but only
*approximately* rotation equivariant: the error shrinks as ``n_orientations`` grows. Use HEPi's
``backbone="vector"`` where exactness matters (the test suite holds it to 1e-5).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equigym.policies.base import HIDDEN_GAIN, orthogonal_


def fibonacci_sphere(n: int) -> Tensor:
    """``n`` near-uniform unit vectors on the full sphere (Fibonacci lattice), shape (n, 3)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = torch.sqrt(1.0 - z * z)
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1).float()


def poly2(a: Tensor) -> Tensor:
    """Degree-2 polynomial features of the last axis: ``[a_i, a_i a_j (i <= j)]``."""
    n = a.shape[-1]
    rows, cols = torch.triu_indices(n, n, device=a.device)
    return torch.cat([a, a[..., rows] * a[..., cols]], dim=-1)


class PonitaConv(nn.Module):
    r"""SE(3)-equivariant up to the orientation grid: depth-wise spatial message passing.

    For an edge ``j -> i``, ``d_ij`` the (squashed) position difference and every grid
    orientation ``o``,

    .. math::
        k_{ij}(o) = \mathrm{MLP}\big(\mathrm{poly}_2[\,o\cdot d_{ij},\
        \lVert d_{ij} - (o\cdot d_{ij})\,o \rVert\,],\ e_{ij}\big), \qquad
        m_i(o) = \textstyle\sum_j w_{ij}\, x_j(o) \odot k_{ij}(o).

    Args:
        hidden_dim: Channels ``C`` per orientation.
        edge_dim: Width of scalar edge features (0: none).
        activation: Activation module class.

    Shapes:
        ``x_src`` (M_s, O, C), ``edge_index`` (2, E), ``edge_weight`` (E, 1), ``edge_vec`` (E, 3),
        ``grid`` (O, 3), ``edge_attr`` (E, edge_dim) or ``None``; output (M_t, O, C).
    """

    def __init__(self, hidden_dim: int, edge_dim: int = 0,
                 activation: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        self.edge_dim = edge_dim
        self.kernel = nn.Sequential(
            nn.Linear(5 + edge_dim, hidden_dim), activation(), nn.Linear(hidden_dim, hidden_dim)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal weights (gain sqrt 2), zero biases."""
        orthogonal_(self.kernel, HIDDEN_GAIN)

    def forward(self, x_src: Tensor, edge_index: Tensor, edge_weight: Tensor, edge_vec: Tensor,
                grid: Tensor, n_target: int, edge_attr: Tensor | None = None) -> Tensor:
        """Messages summed at each target node and orientation."""
        along = edge_vec @ grid.T  # (E, O)
        # The perpendicular part's length; the small constant keeps sqrt differentiable at 0.
        perp = torch.sqrt((edge_vec.square().sum(-1, keepdim=True) - along.square()).clamp_min(0)
                          + 1e-12)
        feats = poly2(torch.stack([along, perp], dim=-1))  # (E, O, 5)
        if self.edge_dim:
            assert edge_attr is not None
            feats = torch.cat([feats, edge_attr.unsqueeze(1).expand(-1, grid.shape[0], -1)], -1)
        msg = x_src.index_select(0, edge_index[0]) * self.kernel(feats)
        msg = msg * edge_weight.unsqueeze(-1)
        out = x_src.new_zeros(n_target, *x_src.shape[1:])
        return out.index_add_(0, edge_index[1], msg)


class PonitaUpdate(nn.Module):
    r"""SE(3)-equivariant up to the orientation grid: sphere convolution and ConvNeXt update.

    .. math::
        y(o') = \tfrac{1}{N}\textstyle\sum_o m(o) \odot K(o\cdot o') + b, \qquad
        x \leftarrow x + \mathrm{MLP}(\mathrm{LayerNorm}(y))

    with ``K`` an MLP of ``[o . o', (o . o')^2]`` (depth-wise) and the MLP ``C -> 4C -> C``.

    Args:
        hidden_dim: Channels ``C`` per orientation.
        activation: Activation module class.
        layer_norm: LayerNorm before the MLP.
    """

    def __init__(self, hidden_dim: int, activation: type[nn.Module] = nn.SiLU,
                 layer_norm: bool = True) -> None:
        super().__init__()
        self.fibre = nn.Sequential(nn.Linear(2, hidden_dim), activation(),
                                   nn.Linear(hidden_dim, hidden_dim))
        self.bias = nn.Parameter(torch.zeros(hidden_dim))
        self.norm = nn.LayerNorm(hidden_dim) if layer_norm else nn.Identity()
        self.mlp = nn.Sequential(nn.Linear(hidden_dim, 4 * hidden_dim), activation(),
                                 nn.Linear(4 * hidden_dim, hidden_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthogonal weights (gain sqrt 2), zero biases; the residual branch starts small."""
        orthogonal_(self.fibre, HIDDEN_GAIN)
        orthogonal_(self.mlp, HIDDEN_GAIN)
        nn.init.zeros_(self.bias)
        self.mlp[-1].weight.data.mul_(0.1)

    def forward(self, x: Tensor, message: Tensor, grid: Tensor) -> Tensor:
        """``x`` and ``message`` (M, O, C) -> updated ``x`` (M, O, C)."""
        cos = grid @ grid.T
        kernel = self.fibre(torch.stack([cos, cos * cos], dim=-1))  # (O, O, C)
        y = torch.einsum("moc,opc->mpc", message, kernel) / grid.shape[0] + self.bias
        return x + self.mlp(self.norm(y))


__all__ = ["PonitaConv", "PonitaUpdate", "fibonacci_sphere", "poly2"]

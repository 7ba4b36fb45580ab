r"""E(3)-equivariant motion forecaster for graph nodes, after EqMotion (Xu et al., CVPR 2023).

Paper: "EqMotion: Equivariant Multi-agent Motion Prediction with Invariant Interaction Reasoning",
https://arxiv.org/abs/2303.10876 (re-implemented from the paper; no code copied).

Given the last ``T`` positions ``x_i(t)`` of ``N`` nodes (padded, with a mask), predict the next
``H`` positions. With ``c`` the masked centroid of the nodes' last positions, ``X = x - c`` and
``V`` the finite-difference velocities:

.. math::
    G_i^{(0)} = W_x X_i + W_v V_i \in \mathbb{R}^{C\times 3}, \qquad
    h_i^{(0)} = \mathrm{MLP}\big(|V_{i,t}|,\ \langle V_{i,t}, V_{i,t+1}\rangle,
    \ |X_{i,T}|\big)

(bias-free maps along time: ``G`` holds C equivariant vector channels, ``h`` invariants). Each
of ``L`` layers passes messages over the k nearest neighbours ``j`` of ``i`` (by last position):

.. math::
    m_{ij} = \phi_e\big(h_i, h_j, |G_i - G_j|_{1..C}\big), \quad
    G_i \leftarrow G_i + \tfrac{1}{k}\textstyle\sum_j \phi_a(m_{ij}) \odot (G_i - G_j)
    + \sigma(\phi_g(h_i)) \odot W_G G_i, \quad
    h_i \leftarrow h_i + \phi_h\big(h_i, \tfrac{1}{k}\textstyle\sum_j m_{ij}\big)

and the forecast is the constant-velocity extrapolation plus a learned correction,
``x_i(T+k) = x_i(T) + k V_{i,T} + (W_o G_i)_k``. Only differences of positions, norms, inner
products and invariant-weighted channel mixes occur, so rotating, reflecting and translating the
past (``x -> R x + t``) rotates, reflects and translates the forecast: E(3)-equivariant. The output
map starts at zero, so an untrained forecaster is the constant-velocity baseline.

Args:
    history: Past frames ``T`` (>= 2).
    horizon: Future frames ``H``.
    channels: Vector channels ``C``.
    hidden: Width of the invariant features.
    layers: Message-passing layers ``L``.
    k: Neighbours per node (fewer if a graph has fewer real nodes).

Shapes:
    ``past`` (B, N, T, 3), ``mask`` (B, N) (1 for real nodes) -> ``future`` (B, N, H, 3); padded
    nodes predict their last position.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from equigym.modules.common import mlp


class EqMotionLayer(nn.Module):
    """E(3)-equivariant: one EqMotion-style layer on (h, G) over a kNN graph."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.edge = mlp(2 * hidden + channels, hidden, hidden)
        self.coef = nn.Linear(hidden, channels)
        self.gate = nn.Linear(hidden, channels)
        self.mix = nn.Linear(channels, channels, bias=False)
        self.node = mlp(2 * hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def reset_parameters(self) -> None:
        """Default init, then small vector updates (a near-identity layer at the start)."""
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.LayerNorm) and m is not self:
                m.reset_parameters()
        for lin in (self.coef, self.gate):
            nn.init.normal_(lin.weight, std=0.01)
            nn.init.zeros_(lin.bias)
        nn.init.zeros_(self.mix.weight)

    def message(self, h_i: Tensor, h_j: Tensor, g_i: Tensor, g_j: Tensor) -> Tensor:
        """Invariant edge messages from node invariants and per-channel distances."""
        dist = (g_i - g_j).norm(dim=-1)  # (B, N, k, C)
        return self.edge(torch.cat([h_i, h_j, dist], dim=-1))

    def forward(self, h: Tensor, g: Tensor, nbr: Tensor, nbr_w: Tensor) -> tuple[Tensor, Tensor]:
        """``h`` (B, N, D), ``g`` (B, N, C, 3), neighbour indices and weights (B, N, k)."""
        b, n, k = nbr.shape
        flat = nbr.reshape(b, n * k)
        h_j = torch.gather(h, 1, flat[..., None].expand(-1, -1, h.shape[-1])).view(b, n, k, -1)
        g_j = torch.gather(g.flatten(2), 1, flat[..., None].expand(-1, -1, g.shape[2] * 3))
        g_j = g_j.view(b, n, k, g.shape[2], 3)
        g_i = g.unsqueeze(2)
        m = self.message(h.unsqueeze(2).expand(-1, -1, k, -1), h_j, g_i, g_j)
        w = nbr_w.unsqueeze(-1)  # (B, N, k, 1): 1/k for real neighbours, 0 for padding
        rel = (self.coef(m).unsqueeze(-1) * (g_i - g_j) * w.unsqueeze(-1)).sum(2)
        mixed = self.mix(g.transpose(-1, -2)).transpose(-1, -2)
        g = g + rel + torch.sigmoid(self.gate(h)).unsqueeze(-1) * mixed
        h = self.norm(h + self.node(torch.cat([h, (m * w).sum(2)], dim=-1)))
        return h, g


class EqMotionForecaster(nn.Module):
    """E(3)-equivariant: node-position forecaster (EqMotion-style); see the module docstring."""

    def __init__(
        self, history: int = 8, horizon: int = 8, channels: int = 16, hidden: int = 64,
        layers: int = 2, k: int = 8,
    ) -> None:  # fmt: skip
        super().__init__()
        if history < 2 or horizon < 1 or channels < 1 or hidden < 1 or layers < 0 or k < 1:
            raise ValueError(
                f"need history >= 2, horizon >= 1, channels/hidden/k >= 1, layers >= 0; got "
                f"{history}, {horizon}, {channels}, {hidden}, {layers}, {k}"
            )
        self.history, self.horizon, self.k = history, horizon, k
        self.trained_on: dict[str, str | None] = {"env": None, "node_type": None}
        """Env id and node type of the training data (set by :func:`load_forecaster`)."""
        self.config = {"history": history, "horizon": horizon, "channels": channels,
                       "hidden": hidden, "layers": layers, "k": k}  # fmt: skip
        self.w_x = nn.Linear(history, channels, bias=False)
        self.w_v = nn.Linear(history - 1, channels, bias=False)
        n_inv = (history - 1) + (history - 2) + 1
        self.embed = mlp(n_inv, hidden, hidden)
        self.layers = nn.ModuleList(EqMotionLayer(channels, hidden) for _ in range(layers))
        self.out = nn.Linear(channels, horizon, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default init; the output map at zero (start as the constant-velocity baseline)."""
        for m in (self.w_x, self.w_v, *self.embed):
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        nn.init.zeros_(self.out.weight)

    def neighbours(self, pos: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The k nearest real neighbours of each node (not itself): indices and weights."""
        n = pos.shape[1]
        k = min(self.k, max(n - 1, 1))
        d = torch.cdist(pos, pos)
        invalid = (mask < 0.5).unsqueeze(1) | torch.eye(n, dtype=torch.bool, device=pos.device)
        d = d.masked_fill(invalid, float("inf"))
        dist, idx = d.topk(k, dim=-1, largest=False)
        real = torch.isfinite(dist).to(pos.dtype) * mask.unsqueeze(-1)
        return idx, real / real.sum(-1, keepdim=True).clamp_min(1.0)

    def forward(self, past: Tensor, mask: Tensor) -> Tensor:
        """Future positions (B, N, H, 3) from past ones (B, N, T, 3); see the module docstring."""
        if past.ndim != 4 or past.shape[2] != self.history or past.shape[3] != 3:
            raise ValueError(f"past must be (B, N, {self.history}, 3), got {tuple(past.shape)}")
        m = mask.to(past.dtype)
        last = past[:, :, -1]
        centre = (last * m[..., None]).sum(1, keepdim=True) / m.sum(1).clamp_min(1.0)[:, None, None]
        x = (past - centre[:, :, None]) * m[..., None, None]
        v = (past[:, :, 1:] - past[:, :, :-1]) * m[..., None, None]
        # Channel maps act along time: (B, N, 3, T) @ W^T -> (B, N, 3, C) -> (B, N, C, 3).
        g = (self.w_x(x.transpose(2, 3)) + self.w_v(v.transpose(2, 3))).transpose(2, 3)
        speed = v.norm(dim=-1)
        turn = (v[:, :, 1:] * v[:, :, :-1]).sum(-1)
        h = self.embed(torch.cat([speed, turn, x[:, :, -1].norm(dim=-1, keepdim=True)], dim=-1))
        nbr, w = self.neighbours(x[:, :, -1], m)  # centred: the same rounding anywhere
        for layer in self.layers:
            h, g = layer(h, g, nbr, w)
        steps = torch.arange(1, self.horizon + 1, dtype=past.dtype, device=past.device)
        const_vel = last[:, :, None] + steps[:, None] * v[:, :, -1:]
        delta = self.out(g.transpose(2, 3)).transpose(2, 3)  # (B, N, H, 3)
        future = const_vel + delta
        return torch.where(m[..., None, None] > 0.5, future, last[:, :, None].expand_as(future))


def constant_velocity(past: Tensor, horizon: int) -> Tensor:
    """The baseline: ``x(T + k) = x(T) + k (x(T) - x(T - 1))``, shape (B, N, H, 3)."""
    steps = torch.arange(1, horizon + 1, dtype=past.dtype, device=past.device)
    return past[:, :, -1:] + steps[:, None] * (past[:, :, -1:] - past[:, :, -2:-1])


def forecaster_file(path: str | os.PathLike) -> Path:
    """The forecaster file a path names: itself, or ``forecaster.pt`` in a folder."""
    path = Path(path)
    return path / "forecaster.pt" if path.is_dir() else path


def load_forecaster(path: str | os.PathLike) -> EqMotionForecaster:
    """A saved forecaster (``forecaster.pt`` or its folder), read without unpickling.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a forecaster file.
    """
    path = forecaster_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"No forecaster file {str(path)!r}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = EqMotionForecaster(**saved["config"])
        model.load_state_dict(saved["state_dict"])
    except Exception as err:  # noqa: BLE001 - any failure means: not a readable forecaster
        raise ValueError(f"{str(path)!r} is not a readable forecaster: {err}") from None
    model.trained_on = {"env": saved.get("env"), "node_type": saved.get("node_type")}
    return model.eval()


__all__ = [
    "EqMotionForecaster",
    "EqMotionLayer",
    "constant_velocity",
    "forecaster_file",
    "load_forecaster",
]

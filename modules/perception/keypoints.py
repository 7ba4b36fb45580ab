"""Level-2 perception: an equivariant keypoint network that refines node positions from points.

:class:`KeypointNet` takes a point cloud and a first guess of the tracked nodes (level 1's
geometric fit) and moves every node by equivariant messages: attention over its nearest points
and along the node graph's own edges (rope chain, outline kNN, cloth mesh). Only distances enter
the learned functions and every update is a weighted sum of relative vectors, so the network is
E(3)-equivariant by construction: rotating, reflecting or translating points and guesses moves
the output the same way (tested to float32 precision). It is trained self-supervised on
simulator ground truth (``python -m equigym.modules.perception.train``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from equigym.modules.common import mlp

MAX_POINTS = 512  # points per cloud fed to the network (evenly strided subsample)


class RBF(nn.Module):
    """Gaussian radial basis expansion of distances (m) on ``n`` centres up to ``cutoff``."""

    def __init__(self, n: int = 16, cutoff: float = 0.3) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n))
        self.gamma = (n / cutoff) ** 2

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """``(..., ) → (..., n)``."""
        return torch.exp(-self.gamma * (d.unsqueeze(-1) - self.centres) ** 2)


class RefineLayer(nn.Module):
    r"""E(3)-equivariant node update from nearby points and graph neighbours.

    With invariant node features :math:`h_j`, node positions :math:`y_j`, its ``k`` nearest
    points :math:`p_i` (:math:`r_{ij} = p_i - y_j`) and graph neighbours :math:`l`:

    .. math::
        e_{ij} = \phi_e(h_j, \mathrm{rbf}(\lVert r_{ij}\rVert)),\quad
        a_{ij} = \mathrm{softmax}_i(w^\top e_{ij})\,(1 - \lVert r_{ij}\rVert / d_{k+1}),\quad
        y_j \mathrel{+}= \sum_i a_{ij}\, g(e_{ij})\, r_{ij}
            + \tfrac{1}{\deg j}\sum_l \psi(f_{jl})\,(y_l - y_j),

    :math:`d_{k+1}` the distance of the :math:`(k+1)`-th nearest point,
    :math:`f_{jl} = \phi_n(h_j, h_l, \lVert y_l - y_j\rVert, \lVert y^0_l - y^0_j\rVert)` and
    :math:`h_j \mathrel{+}= \phi_h(h_j, \sum_i a_{ij} e_{ij}, \mathrm{mean}_l f_{jl})`.

    Args:
        hidden: Width of the invariant features.
        k: Points attended per node.
        cutoff: Range of the distance basis, m.

    Shapes:
        points (B, M, 3), point mask (B, M), nodes (B, N, 3), guess (B, N, 3), features
        (B, N, hidden), adjacency (B, N, N) → nodes (B, N, 3), features (B, N, hidden).
    """

    def __init__(self, hidden: int, k: int = 16, cutoff: float = 0.3) -> None:
        super().__init__()
        self.k = k
        self.rbf = RBF(16, cutoff)
        self.edge = mlp(hidden + 16, hidden, hidden)
        self.score = nn.Linear(hidden, 1)
        self.gate = nn.Linear(hidden, 1)
        self.node = mlp(2 * hidden + 32, hidden, hidden)
        self.pull = nn.Linear(hidden, 1)
        self.update = mlp(3 * hidden, hidden, hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small position updates at initialisation (the guess passes through almost as is)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        for lin in (self.gate, self.pull):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, points: torch.Tensor, pmask: torch.Tensor, y: torch.Tensor,
                y0: torch.Tensor, h: torch.Tensor, adj: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One refinement round (see the class docstring)."""
        # Direct differences: the matrix-product form loses digits for near points.
        dist = torch.cdist(y, points, compute_mode="donot_use_mm_for_euclid_dist")  # (B, N, M)
        dist = dist.masked_fill(pmask[:, None, :] < 0.5, 1e6)
        k = min(self.k, points.shape[1] - 1)
        d, idx = dist.topk(k + 1, dim=-1, largest=False)  # (B, N, k + 1)
        # Envelope 1 - d / d_(k+1): a point's weight falls to zero as it leaves the k nearest,
        # so the output stays continuous (and equivariant) when rotation round-off reorders
        # near-tied neighbours.
        env = (1.0 - d[..., :k] / d[..., k:].clamp(min=1e-9)).clamp(min=0.0)
        d, idx = d[..., :k], idx[..., :k]
        near = torch.gather(points[:, None].expand(-1, y.shape[1], -1, -1), 2,
                            idx[..., None].expand(-1, -1, -1, 3))
        rel = near - y[:, :, None]  # (B, N, k, 3)
        valid = d < 1e5
        e = self.edge(torch.cat([h[:, :, None].expand(-1, -1, k, -1),
                                 self.rbf(torch.where(valid, d, 0.0))], -1))
        logit = self.score(e).squeeze(-1).masked_fill(~valid, -1e9)
        a = torch.softmax(logit, dim=-1) * valid * env  # (B, N, k)
        move = (a[..., None] * self.gate(e) * rel).sum(2)
        m_pts = (a[..., None] * e).sum(2)
        # Graph neighbours: dense pairs weighted by the adjacency.
        dy = y[:, None] - y[:, :, None]  # (B, N, N, 3): y_l - y_j
        dn = dy.norm(dim=-1)
        d0 = (y0[:, None] - y0[:, :, None]).norm(dim=-1)
        n = h.shape[1]
        f = self.node(torch.cat([h[:, :, None].expand(-1, -1, n, -1),
                                 h[:, None].expand(-1, n, -1, -1),
                                 self.rbf(dn), self.rbf(d0)], -1))
        deg = adj.sum(-1, keepdim=True).clamp(min=1.0)
        move = move + (adj[..., None] * self.pull(f) * dy).sum(2) / deg
        m_nb = (adj[..., None] * f).sum(2) / deg
        h = h + self.update(torch.cat([h, m_pts, m_nb], -1))
        return y + move, h


class KeypointNet(nn.Module):
    """E(3)-equivariant refinement of node positions from a point cloud (see the module doc).

    Args:
        scalars: Invariant scalar features per node (the observation's ``<t>/x`` columns).
        hidden: Feature width.
        layers: Refinement rounds.
        k: Points attended per node.
        cutoff: Range of the distance basis, m.
    """

    def __init__(self, scalars: int, hidden: int = 64, layers: int = 3, k: int = 16,
                 cutoff: float = 0.3) -> None:
        super().__init__()
        self.hparams = {"scalars": scalars, "hidden": hidden, "layers": layers, "k": k,
                        "cutoff": cutoff}
        self.embed = nn.Linear(scalars + 1, hidden)
        self.layers = nn.ModuleList(RefineLayer(hidden, k, cutoff) for _ in range(layers))
        self.trained_on: dict[str, Any] = {}

    def forward(self, points: torch.Tensor, pmask: torch.Tensor, guess: torch.Tensor,
                scalars: torch.Tensor, adj: torch.Tensor, nmask: torch.Tensor) -> torch.Tensor:
        """Refined nodes ``(B, N, 3)`` (padding nodes stay at their guess, zero)."""
        h = self.embed(torch.cat([scalars, torch.ones_like(scalars[..., :1])], -1))
        y = guess
        adj = adj * nmask[:, :, None] * nmask[:, None, :]
        for layer in self.layers:
            y, h = layer(points, pmask, y, guess, h, adj)
        return torch.where(nmask[..., None] > 0.5, y, guess)


def subsample(points: np.ndarray, n: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Points padded or evenly strided to ``n`` rows, and their mask (deterministic)."""
    out = np.zeros((n, 3), dtype=np.float32)
    mask = np.zeros(n, dtype=np.float32)
    if len(points) > n:
        points = points[np.linspace(0, len(points) - 1, n).astype(int)]
    out[: len(points)] = points
    mask[: len(points)] = 1.0
    return out, mask


def adjacency(obs: dict[str, np.ndarray], node_type: str) -> np.ndarray:
    """Dense symmetric ``(N, N)`` adjacency of a node type's own edges in an observation."""
    n = obs[f"{node_type}/mask"].shape[0]
    adj = np.zeros((n, n), dtype=np.float32)
    for key in obs:
        parts = key.split("/")[0].split("-")
        if key.endswith("/index") and len(parts) == 3 and parts[0] == parts[2] == node_type:
            idx = np.asarray(obs[key]).round().astype(int)
            m = np.asarray(obs[key.replace("/index", "/mask")]) > 0.5
            adj[idx[1, m], idx[0, m]] = 1.0
            adj[idx[0, m], idx[1, m]] = 1.0
    np.fill_diagonal(adj, 0.0)
    return adj


def inputs(points: np.ndarray, guess: np.ndarray, obs: dict[str, np.ndarray],
           node_type: str) -> tuple[np.ndarray, ...]:
    """The network's per-frame inputs: points, point mask, guess, scalars, adjacency, mask.

    Positions are re-centred on the guess's mean (the network is translation-equivariant, and
    small numbers keep float32 exact); add the centre back to the output.
    """
    mask = (np.asarray(obs[f"{node_type}/mask"]) > 0.5).astype(np.float32)
    centre = guess[mask > 0].mean(axis=0) if mask.any() else np.zeros(3)
    pts, pmask = subsample(np.asarray(points, dtype=np.float64) - centre)
    g = ((guess - centre) * mask[:, None]).astype(np.float32)
    return (pts, pmask, g, np.asarray(obs[f"{node_type}/x"], dtype=np.float32),
            adjacency(obs, node_type), mask, centre)


@torch.no_grad()
def refine(net: KeypointNet, points: np.ndarray, guess: np.ndarray, obs: dict[str, np.ndarray],
           node_type: str) -> np.ndarray:
    """Refined node positions of one frame (numpy in, numpy out, padded like ``guess``)."""
    *arrays, centre = inputs(points, guess, obs, node_type)
    batch = [torch.as_tensor(a)[None] for a in arrays]
    y = net(*batch)[0].double().numpy()
    mask = batch[-1][0].numpy()[:, None] > 0.5
    return np.where(mask, y + centre, 0.0)


def keypoint_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``keypoints.pt`` in it if it is a folder.

    Raises:
        FileNotFoundError: If there is no such file.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "keypoints.pt"
    if not p.is_file():
        raise FileNotFoundError(f"no keypoint network at {str(p)!r}: train one with python -m "
                                "equigym.modules.perception.train --out DIR")
    return p


def save_keypoint_net(net: KeypointNet, path: str | os.PathLike) -> None:
    """Weights, hyperparameters and provenance in one torch file (no pickled objects)."""
    torch.save({"state_dict": net.state_dict(), "hparams": net.hparams,
                "trained_on": json.dumps(net.trained_on)}, path)


def load_keypoint_net(path: str | os.PathLike) -> KeypointNet:
    """Load a network saved by :func:`save_keypoint_net` (eval mode, CPU, ``weights_only``).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a keypoint network file.
    """
    file = keypoint_file(path)
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
        net = KeypointNet(**blob["hparams"])
        net.load_state_dict(blob["state_dict"])
        net.trained_on = json.loads(blob.get("trained_on", "{}"))
    except Exception as err:  # torch raises many types for a corrupt file
        raise ValueError(f"{str(file)!r} is not a keypoint network saved by equigym "
                         f"({type(err).__name__}: {err}); retrain it") from err
    return net.eval()


__all__ = [
    "KeypointNet",
    "RefineLayer",
    "adjacency",
    "inputs",
    "keypoint_file",
    "load_keypoint_net",
    "refine",
    "save_keypoint_net",
    "subsample",
]

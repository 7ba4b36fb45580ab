"""SET: the subequivariant transformer of 3D-SGRL, generic over graph specs and padded batches."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from equigym.graph import ActionGroup, GraphSpec
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

_VECTOR_KINDS = ("vector", "pseudovector")
_MASKED_LOGIT = -1e9
"""Added to the attention logits of padded keys: ``exp`` of it is exactly 0 in float32."""


def squash_channels(vectors: Tensor) -> Tensor:
    """Shrink each channel of (..., 3, C) vectors from length ``r`` to ``log(1 + r)``.

    Same as :func:`~equigym.policies.base.squash_vectors` on the component-major layout:
    equivariant (only lengths change, never per axis), finite gradients at zero vectors.
    """
    # The 1e-12 keeps the norm (and its gradient) finite at zero; log1p(r) / r -> 1 as r -> 0.
    norm = ((vectors * vectors).sum(dim=-2, keepdim=True) + 1e-12).sqrt()
    return vectors * (torch.log1p(norm) / norm)


class _Gram(torch.autograd.Function):
    """``zᵀz`` over the component axis of (..., 3, n) tensors, with a hand-written backward.

    Autograd's backward of this batched (n × 3)(3 × n) product is ~10× slower on CPU than the
    closed form ``dz = z (dG + dGᵀ)``.
    """

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(z)
        return z.transpose(-1, -2) @ z

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        (z,) = ctx.saved_tensors
        return z @ (grad + grad.transpose(-1, -2))


def gram_matrix(z: Tensor) -> Tensor:
    """Per-node Gram matrix ``zᵀz`` of (..., 3, n) vectors, shape (..., n, n): invariant."""
    return _Gram.apply(z)


class VectorMix(nn.Module):
    """Equivariant: a bias-free channel mix of ``[Z, Γ]``, node vectors and global vectors.

    Vectors are stored component-major, (..., 3, C), so a channel mix is a plain bias-free
    ``Linear`` on the last axis: each output channel is a linear combination of input channels
    with the same coefficients for x, y and z, hence ``mix(RZ, RΓ) = R mix(Z, Γ)`` for every
    orthogonal ``R``. The globals' share is computed once per graph and broadcast over nodes
    (no concatenation).

    Args:
        in_channels: Node vector channels ``C``.
        n_global: Global vector channels ``G`` (0: none).
        out_channels: Output channels ``C'``.

    Shapes:
        vectors (B, N, 3, C), globals (B, 3, G) -> (B, N, 3, C').
    """

    def __init__(self, in_channels: int, n_global: int, out_channels: int) -> None:
        super().__init__()
        self.nodes = nn.Linear(in_channels, out_channels, bias=False)
        self.globals = nn.Linear(n_global, out_channels, bias=False) if n_global else None

    def forward(self, vectors: Tensor, globals_: Tensor) -> Tensor:
        """Mixed vectors (B, N, 3, C')."""
        out = self.nodes(vectors)
        if self.globals is not None:
            out = out + self.globals(globals_).unsqueeze(1)
        return out


class GramInvariants(nn.Module):
    """Invariant: the Gram matrix of learned vector channels and the global vectors.

    ``U = squash(Z W)`` projects the ``C`` vector channels of each node to ``m`` channels with a
    bias-free map and squashes each channel's length to ``log(1 + |u|)`` (equivariant scale
    control, never per axis). The output is the upper triangle of the Gram matrix
    ``[U, Γ]ᵀ[U, Γ]``: the dot products ``⟨u_i, u_j⟩`` and ``⟨u_i, γ_k⟩``, and, with
    ``global_pairs``, ``⟨γ_k, γ_l⟩`` (the same for all nodes of a graph). All are invariant under
    every orthogonal map applied to both ``Z`` and ``Γ`` (Han et al., NeurIPS 2022); with ``Γ``
    held fixed (gravity, target direction), exactly under the maps that fix ``Γ``.

    Args:
        in_channels: Vector channels ``C`` of the input.
        n_global: Global vector channels ``G``.
        gram_dim: Learned channels ``m``.
        global_pairs: Also return the dot products among the globals.

    Shapes:
        vectors (B, N, 3, C), globals (B, 3, G) -> (B, N, out_dim).
    """

    def __init__(
        self, in_channels: int, n_global: int, gram_dim: int, global_pairs: bool = False
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, gram_dim, bias=False)
        n = gram_dim + n_global
        rows, cols = torch.triu_indices(n, n)
        keep = (rows < gram_dim) | global_pairs
        self.register_buffer("_pairs", (rows * n + cols)[keep], persistent=False)
        self.out_dim = int(keep.sum())

    def forward(self, vectors: Tensor, globals_: Tensor) -> Tensor:
        """Invariant features (B, N, out_dim)."""
        u = squash_channels(self.proj(vectors))  # (B, N, 3, m)
        g = globals_.unsqueeze(1).expand(-1, u.shape[1], -1, -1)
        gram = gram_matrix(torch.cat([u, g], dim=-1))
        return gram.flatten(start_dim=-2).index_select(-1, self._pairs)


class SETInputs(NamedTuple):
    """Per-node inputs of a batch, all node types concatenated along the node axis ``N``."""

    scalars: list[Tensor]
    """Per node type: (B, N_t, S_t + H) invariant scalars (``x`` and global scalars)."""
    vectors: list[Tensor]
    """Per node type: (B, N_t, 3, K_t + 1) squashed vector channels, centroid-relative position
    first; zero on padded nodes."""
    globals_: Tensor
    """(B, 3, G) squashed global vectors."""
    mask: Tensor
    """(B, N) 1 for real nodes."""
    relations: Tensor | None
    """(B, N, N, R) invariant pair features (hop-distance one-hot, typed adjacency), or None."""


def relation_features(obs: Obs, spec: GraphSpec, max_hops: int) -> Tensor:
    """Invariant pair features of every node pair, from the edges only, (B, N, N, R).

    ``R = max_hops + 2 + E``: a one-hot of the hop distance in the undirected union of all edge
    types (0, 1, ..., ``max_hops``, farther or unreachable), then, per edge type, whether the
    pair is an edge of that type (direction kept: row = source, column = target). Nodes of all
    types share one index space, in ``spec.node_types`` order. Padded edges count for nothing;
    padded nodes have no edges.
    """
    offsets, start = {}, 0
    for n in spec.node_types:
        offsets[n.name] = start
        start += n.count
    n_all = start
    mask = obs["action_mask"]
    batch, device, dtype = mask.shape[0], mask.device, mask.dtype
    base = torch.arange(batch, device=device).unsqueeze(1) * (n_all * n_all)
    typed = []
    for e in spec.edge_types:
        n_src, n_tgt = spec.node_type(e.source).count, spec.node_type(e.target).count
        index = obs[f"{e.key}/index"].round().long()
        src = index[:, 0].clamp(0, max(n_src - 1, 0)) + offsets[e.source]
        tgt = index[:, 1].clamp(0, max(n_tgt - 1, 0)) + offsets[e.target]
        weight = (obs[f"{e.key}/mask"] > 0.5).to(dtype)
        adj = torch.zeros(batch * n_all * n_all, dtype=dtype, device=device)
        adj.index_add_(0, (base + src * n_all + tgt).reshape(-1), weight.reshape(-1))
        typed.append(adj.view(batch, n_all, n_all).clamp(max=1.0))
    eye = torch.eye(n_all, dtype=dtype, device=device).expand(batch, -1, -1)
    if typed:
        und = torch.stack(typed).sum(0)
        und = ((und + und.transpose(1, 2)) > 0).to(dtype)
    else:
        und = torch.zeros_like(eye)
    hops = [eye]
    reached, frontier = eye, eye
    for _ in range(max_hops):
        frontier = ((frontier @ und) > 0).to(dtype)
        new = frontier * (1.0 - reached)
        hops.append(new)
        reached = reached + new
    hops.append(1.0 - reached)
    return torch.stack(hops + typed, dim=-1)


class SETLayer(nn.Module):
    """Subequivariant (given the global vectors): one transformer layer on scalars and vectors.

    Attention weights come from invariant scalars only (plus an invariant bias); the same
    weights average the scalar values and bias-free channel mixes of the other nodes' vectors.
    Scalars get LayerNorm'd residual updates; vectors plain residual updates. The feed-forward
    block reads the Gram invariants of the updated vectors and, besides the scalar update,
    gates a bias-free channel mix of ``[Z, Γ]`` with invariant weights.

    Args:
        hidden_dim: Scalar width ``d``.
        vector_dim: Vector channels ``C``.
        n_heads: Attention heads (divides ``d`` and ``C``).
        n_global: Global vector channels ``G``.
        gram_dim: Learned channels of the Gram invariants.
        ffn_dim: Hidden width of the feed-forward block.
        activation: Activation module class.

    Shapes:
        h (B, N, d), vectors (B, N, 3, C), globals (B, 3, G), mask (B, N),
        attention bias (B, heads, N, N) -> h (B, N, d), vectors (B, N, 3, C).
    """

    def __init__(
        self,
        hidden_dim: int,
        vector_dim: int,
        n_heads: int,
        n_global: int,
        gram_dim: int,
        ffn_dim: int,
        activation: type[nn.Module],
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.out = nn.Linear(hidden_dim, hidden_dim)
        self.vec_value = nn.Linear(vector_dim, vector_dim, bias=False)
        self.norm_attn = nn.LayerNorm(hidden_dim)
        self.gram = GramInvariants(vector_dim, n_global, gram_dim)
        self.ffn_in = nn.Linear(hidden_dim + self.gram.out_dim, ffn_dim)
        self.ffn_act = activation()
        self.ffn_out = nn.Linear(ffn_dim, hidden_dim)
        self.gate = nn.Linear(ffn_dim, vector_dim)
        self.vec_ffn = VectorMix(vector_dim, n_global, vector_dim)
        self.norm_ffn = nn.LayerNorm(hidden_dim)

    def forward(
        self, h: Tensor, vectors: Tensor, globals_: Tensor, mask: Tensor, bias: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Updated scalars (B, N, d) and vectors (B, N, 3, C); zero on padded nodes."""
        b, n, d = h.shape
        c = vectors.shape[-1]
        dh, ch = d // self.n_heads, c // self.n_heads
        # One split (its backward is one concatenation, not a zero-filled slice per head).
        chunks = self.qkv(h).split(dh, dim=-1)  # q heads, then k heads, then v heads
        w_values = self.vec_value.weight.split(ch, dim=0)
        scalar_msgs, vector_msgs = [], []
        # One head at a time on views: no 5-D permutes (slow to copy on CPU).
        for i in range(self.n_heads):
            q, k, v = chunks[i], chunks[self.n_heads + i], chunks[2 * self.n_heads + i]
            logits = (q @ k.transpose(1, 2)) * (dh**-0.5) + bias[:, i]
            # Manual softmax: torch.softmax over a last axis of ~10 is several times slower.
            weights = (logits - logits.amax(dim=-1, keepdim=True)).exp()
            weights = weights / weights.sum(dim=-1, keepdim=True)
            scalar_msgs.append(weights @ v)
            # This head's vector values: its share of the bias-free channel mix, (B, N, 3 ch).
            values = nn.functional.linear(vectors, w_values[i]).view(b, n, 3 * ch)
            vector_msgs.append((weights @ values).view(b, n, 3, ch))
        keep = mask.unsqueeze(-1)
        h = self.norm_attn(h + self.out(torch.cat(scalar_msgs, dim=-1))) * keep
        vectors = (vectors + torch.cat(vector_msgs, dim=-1)) * keep.unsqueeze(-1)
        # Equivariant feed-forward: invariants of the updated vectors drive both updates.
        f = self.ffn_act(self.ffn_in(torch.cat([h, self.gram(vectors, globals_)], dim=-1)))
        h = self.norm_ffn(h + self.ffn_out(f)) * keep
        gated = torch.tanh(self.gate(f)).unsqueeze(-2) * self.vec_ffn(vectors, globals_)
        vectors = (vectors + gated) * keep.unsqueeze(-1)
        return h, vectors


class SETEncoder(nn.Module):
    """Subequivariant (given the global vectors): input embedding and a stack of SET layers.

    Every node of every type is a token. Its scalars are embedded as
    ``LN(W_t [x, I(X, Γ)] + e_t)``: a per-type linear map of its scalars (with the global
    scalars) and the Gram invariants of its input vectors, plus a learned type embedding
    ``e_t``; its vectors as a per-type bias-free channel mix of ``[X, Γ]``. After the layers,
    the invariant readout ``r = act(W [h, I(Z, Γ)])`` summarises each node.

    Args:
        spec: The graph spec.
        hidden_dim: Scalar width ``d``.
        vector_dim: Vector channels ``C``.
        n_layers: SET layers.
        n_heads: Attention heads.
        gram_dim: Learned channels of each Gram block.
        ffn_dim: Feed-forward hidden width.
        activation: Activation module class.
        n_relations: Width ``R`` of the relation features (0: no relation bias).

    Shapes:
        :class:`SETInputs` -> readout (B, N, d), vectors (B, N, 3, C).
    """

    def __init__(
        self,
        spec: GraphSpec,
        hidden_dim: int,
        vector_dim: int,
        n_layers: int,
        n_heads: int,
        gram_dim: int,
        ffn_dim: int,
        activation: type[nn.Module],
        n_relations: int,
    ) -> None:
        super().__init__()
        n_global = len(spec.global_vector_names)
        n_gx = len(spec.global_scalar_names)
        self.n_heads, self.n_layers = n_heads, n_layers
        self.gram_in = nn.ModuleList(
            GramInvariants(len(n.vector_names) + 1, n_global, gram_dim, global_pairs=True)
            for n in spec.node_types
        )
        self.scalar_in = nn.ModuleList(
            nn.Linear(len(n.scalar_names) + n_gx + g.out_dim, hidden_dim, bias=False)
            for n, g in zip(spec.node_types, self.gram_in, strict=True)
        )
        self.vector_in = nn.ModuleList(
            VectorMix(len(n.vector_names) + 1, n_global, vector_dim) for n in spec.node_types
        )
        self.type_embedding = nn.Parameter(torch.zeros(len(spec.node_types), hidden_dim))
        self.norm_in = nn.LayerNorm(hidden_dim)
        self.layers = nn.ModuleList(
            SETLayer(hidden_dim, vector_dim, n_heads, n_global, gram_dim, ffn_dim, activation)
            for _ in range(n_layers)
        )
        self.relation_bias = (
            nn.Linear(n_relations, n_layers * n_heads, bias=False)
            if n_relations and n_layers
            else None
        )
        self.gram_out = GramInvariants(vector_dim, n_global, gram_dim)
        self.readout = nn.Linear(hidden_dim + self.gram_out.out_dim, hidden_dim)
        self.readout_act = activation()

    def forward(self, inputs: SETInputs) -> tuple[Tensor, Tensor]:
        """Invariant readout features (B, N, d) and vectors (B, N, 3, C), zero on padding."""
        glob = inputs.globals_
        hs, zs = [], []
        for t, (x, vec) in enumerate(zip(inputs.scalars, inputs.vectors, strict=True)):
            feats = torch.cat([x, self.gram_in[t](vec, glob)], dim=-1)
            hs.append(self.scalar_in[t](feats) + self.type_embedding[t])
            zs.append(self.vector_in[t](vec, glob))
        mask = inputs.mask
        keep = mask.unsqueeze(-1)
        h = self.norm_in(torch.cat(hs, dim=1)) * keep
        z = torch.cat(zs, dim=1) * keep.unsqueeze(-1)
        b, n = mask.shape
        # Padded keys get a huge negative logit: real nodes attend to real nodes only.
        key_bias = ((mask < 0.5).to(h.dtype) * _MASKED_LOGIT).view(b, 1, 1, n)
        if self.relation_bias is not None and inputs.relations is not None:
            rel = self.relation_bias(inputs.relations)  # (B, N, N, layers * heads)
            rel = rel.view(b, n, n, self.n_layers, self.n_heads).permute(3, 0, 4, 1, 2)
            biases = [key_bias + r for r in rel.unbind(0)]
        else:
            biases = [key_bias.expand(b, self.n_heads, n, n)] * self.n_layers
        for layer, bias in zip(self.layers, biases, strict=True):
            h, z = layer(h, z, glob, mask, bias)
        r = self.readout_act(self.readout(torch.cat([h, self.gram_out(z, glob)], dim=-1))) * keep
        return r, z


class SETPolicy(GraphPolicy):
    r"""Subequivariant: O(3) fixing gravity g (and the target direction), E(3)-equivariant when g rotates with the scene.

    SET, the SubEquivariant Transformer of 3D-SGRL (Chen et al., "Subequivariant Graph
    Reinforcement Learning in 3D Environments", ICML 2023, https://arxiv.org/abs/2305.18951),
    rebuilt for any :class:`~equigym.graph.GraphSpec` and padded multi-morphology batches.

    **Tokens.** Every node of every type is a token (``N = Σ_t N_t``). Node ``i`` carries
    invariant scalars ``x_i`` and ``K_t + 1`` vector channels ``X_i ∈ R^{3×(K_t+1)}``: its
    position relative to the masked centroid of all real nodes (translation invariance) and its
    ``vec`` channels, each squashed to length ``log(1 + |v|)`` (equivariant; never per axis).
    The global vectors ``Γ ∈ R^{3×G}`` (gravity ``g``, target direction ``d``, ...) are appended
    to every node's channel set.

    **Invariants.** ``I(X) = triu([U, Γ]ᵀ[U, Γ])`` with ``U = squash(X W)``, ``W`` a learned
    bias-free ``C → m`` map: all dot products among the node's channels and the globals. For
    ``R ∈ O(3)``, ``I(RX; RΓ) = I(X; Γ)``; with ``Γ`` held fixed, ``I`` is invariant exactly
    under the ``R`` that fix ``Γ`` — subequivariance.

    **Embedding.** ``h_i = LN(W_t [x_i, I(X_i), x_glob] + e_t)`` (``e_t`` a learned type
    embedding), ``Z_i = [X_i, Γ] V_t ∈ R^{3×C}`` (bias-free).

    **Layer** (×``n_layers``), heads ``η``:

    .. math::

        α^η_{ij} &= \operatorname{softmax}_j\big(q^η_i · k^η_j / \sqrt{d_η} + b^η(ρ_{ij})
                     + μ_j\big), \qquad (q, k, v) = W_{qkv} h,\\
        h_i &← \operatorname{LN}\big(h_i + W_o ⊕_η Σ_j α^η_{ij} v^η_j\big), \qquad
        Z_i ← Z_i + ⊕_η Σ_j α^η_{ij} Z_j W^η_v,\\
        f_i &= σ(W_1 [h_i, I(Z_i)]), \quad h_i ← \operatorname{LN}(h_i + W_2 f_i), \quad
        Z_i ← Z_i + \tanh(W_g f_i) ⊙ [Z_i, Γ] W_3,

    where ``μ_j = -1e9`` masks padded keys, ``ρ_ij`` are invariant pair features from the edges
    (hop-distance one-hot and typed adjacency; ``graph_bias``) and ``b`` a learned linear map.
    Padded queries' outputs are zeroed after every update. Everything applied to vectors is a
    linear combination of vectors with invariant coefficients, so ``Z → RZ`` exactly (float32
    round-off, ~1e-6).

    **Readout.** ``r_i = σ(W_r [h_i, I(Z_i)])``. Per action group of node type ``t``:

    * ``"scalar"`` with ``axis_channels`` (locomotion torques): a per-node vector
      ``T_i = [Z_i, Γ] W_T c(r_i)`` (invariant coefficients ``c``) and
      ``a_ik = tanh(⟨axis_ik, T_i⟩)`` with ``axis_ik`` the node's observed hinge axis
      (``vec[axis_channels[k]]``, zero for an empty slot, whose action is then 0);
    * ``"vector"`` / ``"pseudovector"`` (``per_node == 3``): ``T_i`` itself (no tanh: it would
      act per axis);
    * ``"scalar"`` without axes and ``"pseudoscalar"``: ``tanh`` of an invariant linear head on
      ``r_i`` (a pseudoscalar would need a ``det R`` sign: exact for rotations, not
      reflections).

    Action means are exactly 0 on padded nodes. ``log_std`` is a state-independent parameter per
    (group, channel) for scalar groups and one per group for vector groups (isotropic, so the
    Gaussian is equivariant too). The value is ``MLP([masked mean of r over real nodes,
    I(Γ), x_glob])``: invariant. Actor and critic have separate encoders unless
    ``share_encoder``.

    **Parity.** All vector channels are mixed alike, pseudovectors (angular velocity, hinge
    axes) as if polar, as in the reference: the network is equivariant under every ``R ∈ O(3)``
    applied to all channels, hence exactly under proper rotations as
    :func:`~equigym.graph.transform_observation` applies them; under its reflections
    (pseudovectors take ``det R``) the outputs are not exact (nor is that a symmetry of the
    locomotion observation, see the env's docstring).

    **Differences from the reference** (``alpc91/SGRL``): padding masks instead of a 15-node
    cap and positional tables (so any node count); relation bias from the spec's edges (hop
    distance, typed adjacency) in every layer instead of PageRank/Laplacian/BFS in layer 0; a
    learned type embedding; per-node log-squashed channel lengths instead of dividing by the
    Gram's Frobenius norm; ``C`` vector channels (default 32) instead of ``d`` = 128, with no
    output mix after the vector attention; one Gram of ``m + G`` = 14 channels per layer
    feeding the FFN's first linear layer instead of a 32-channel Gram through a
    ``1024 → 2d → d`` MLP; a PaiNN-style gated channel mix as the vector FFN instead of a
    ``32 × 32`` per-node mixing matrix; torques from ``m`` = 12 per-node coefficients ``c``
    (the reference's ``Linear(32 → 1)`` after its ``32 × 32`` matrix collapses to per-node
    coefficients anyway). These cut the multiply-adds per token several-fold at the same width,
    depth and heads (estimated from the layer shapes), which makes PPO on a CPU affordable.

    Args:
        spec: The env's graph spec.
        hidden_dim: Scalar width ``d``.
        n_layers: SET layers.
        n_heads: Attention heads (must divide ``hidden_dim`` and ``vector_dim``).
        vector_dim: Vector channels ``C`` per node.
        gram_dim: Learned channels ``m`` of each Gram block (Gram of ``m + G`` channels).
        ffn_dim: Feed-forward hidden width (default ``2 * hidden_dim``).
        activation: Activation name, one of :data:`~equigym.policies.base.ACTIVATIONS`.
        graph_bias: Add the relation bias from the spec's edges to the attention logits.
        max_hops: Hop distances distinguished by the relation bias (farther ones share a bin).
        tanh_scalars: Squash scalar action means with ``tanh`` (invariant, so allowed).
        share_encoder: One encoder for actor and critic (faster; value gradients then shape the
            actor's features).
        critic_dim: Scalar width of the separate critic encoder (its vector channels and FFN
            scale alike); default ``hidden_dim``. Ignored with ``share_encoder``.
        log_std_init: Initial log standard deviation of every action channel.

    Shapes:
        obs: dict of ``(B, *KeySpec.shape)`` tensors -> mean (B, A), log_std (B, A), value (B,).
    """  # noqa: E501 (the first line states the symmetry in full)

    def __init__(
        self,
        spec: GraphSpec,
        hidden_dim: int = 128,
        n_layers: int = 3,
        n_heads: int = 2,
        vector_dim: int = 32,
        gram_dim: int = 12,
        ffn_dim: int | None = None,
        activation: str = "silu",
        graph_bias: bool = True,
        max_hops: int = 4,
        tanh_scalars: bool = True,
        share_encoder: bool = False,
        critic_dim: int | None = None,
        log_std_init: float = -0.5,
    ) -> None:
        super().__init__(spec, log_std_init=log_std_init, isotropic_vectors=True)
        if min(hidden_dim, n_heads, vector_dim, gram_dim) < 1 or n_layers < 0 or max_hops < 0:
            raise ValueError(
                "need hidden_dim, n_heads, vector_dim, gram_dim >= 1 and n_layers, max_hops >= 0"
            )
        if hidden_dim % n_heads or vector_dim % n_heads:
            raise ValueError(
                f"n_heads={n_heads} must divide hidden_dim={hidden_dim} and vector_dim={vector_dim}"
            )
        act = activation_class(activation)
        ffn_dim = 2 * hidden_dim if ffn_dim is None else ffn_dim
        self.hidden_dim, self.n_layers, self.n_heads = hidden_dim, n_layers, n_heads
        self.vector_dim, self.gram_dim, self.ffn_dim = vector_dim, gram_dim, ffn_dim
        self.activation, self.max_hops = activation, max_hops
        self.graph_bias = graph_bias and bool(spec.edge_types)
        self.tanh_scalars, self.share_encoder = tanh_scalars, share_encoder
        n_global = len(spec.global_vector_names)
        n_rel = max_hops + 2 + len(spec.edge_types) if self.graph_bias else 0
        self.actor = SETEncoder(
            spec, hidden_dim, vector_dim, n_layers, n_heads, gram_dim, ffn_dim, act, n_rel
        )
        critic_dim = hidden_dim if critic_dim is None or share_encoder else critic_dim
        if critic_dim < n_heads or critic_dim % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide critic_dim={critic_dim}")
        self.critic_dim = critic_dim
        if share_encoder:
            self.critic = self.actor
        else:
            # A narrower critic scales its vector channels and FFN alike.
            c_vec = max(n_heads, vector_dim * critic_dim // hidden_dim // n_heads * n_heads)
            c_ffn = max(1, ffn_dim * critic_dim // hidden_dim)
            self.critic = SETEncoder(
                spec, critic_dim, c_vec, n_layers, n_heads, gram_dim, c_ffn, act, n_rel
            )
        # Token slice of each node type in the concatenation of all types.
        self._slices: dict[str, tuple[int, int]] = {}
        start = 0
        for n in spec.node_types:
            self._slices[n.name] = (start, start + n.count)
            start += n.count
        # Per action group: a vector head ([Z, Γ] -> m channels, bias-free) and invariant
        # coefficients c(r) (vector and axis groups), or an invariant linear head.
        self.vector_heads = nn.ModuleList()
        self.scalar_heads = nn.ModuleList()
        for group in spec.actions:
            if self._is_vector_head(group):
                self.vector_heads.append(VectorMix(vector_dim, n_global, gram_dim))
                self.scalar_heads.append(nn.Linear(hidden_dim, gram_dim, bias=False))
            else:
                self.vector_heads.append(nn.Identity())
                self.scalar_heads.append(nn.Linear(hidden_dim, group.per_node))
        rows, cols = torch.triu_indices(n_global, n_global)
        self.register_buffer("_glob_upper", rows * n_global + cols, persistent=False)
        glob_gram = n_global * (n_global + 1) // 2
        self.value_head = nn.Sequential(
            nn.Linear(critic_dim + glob_gram + len(spec.global_scalar_names), critic_dim),
            act(),
            nn.Linear(critic_dim, 1),
        )
        self.reset_parameters()

    @staticmethod
    def _is_vector_head(group: ActionGroup) -> bool:
        """Whether ``group`` is read out from a per-node vector (vector kinds, hinge torques)."""
        return group.kind in _VECTOR_KINDS or (group.kind == "scalar" and bool(group.axis_channels))

    def reset_parameters(self) -> None:
        """Orthogonal init: scalar layers gain sqrt(2), vector mixes 1, action heads 0.01."""
        super().reset_parameters()
        for enc in {id(self.actor): self.actor, id(self.critic): self.critic}.values():
            for m in enc.modules():
                if isinstance(m, nn.Linear):
                    orthogonal_(m, HIDDEN_GAIN if m.bias is not None else 1.0)
                elif isinstance(m, nn.LayerNorm):
                    m.reset_parameters()
            nn.init.normal_(enc.type_embedding, std=0.1)
            for layer in enc.layers:
                # Residual branches start small-ish, so the stack starts close to the embedding.
                orthogonal_(layer.out, 1.0)
                orthogonal_(layer.ffn_out, 1.0)
                orthogonal_(layer.gate, 1.0)
        orthogonal_(self.vector_heads, 1.0)
        orthogonal_(self.scalar_heads, ACTION_GAIN)
        orthogonal_(self.value_head, HIDDEN_GAIN)
        orthogonal_(self.value_head[-1], VALUE_GAIN)

    # --- inputs ---------------------------------------------------------------------------
    def encode_inputs(self, obs: Obs) -> SETInputs:
        """Per-type scalars and squashed vector channels, globals, node mask, relations."""
        centroid = self.centroid(obs)
        glob = squash_vectors(obs["global/vec"]).transpose(1, 2)  # (B, 3, G)
        gx = obs["global/x"] if self.spec.global_scalar_names else None
        scalars, vectors, masks = [], [], []
        for n in self.spec.node_types:
            mask = obs[f"{n.name}/mask"]
            keep = mask.unsqueeze(-1) > 0.5
            x = obs[f"{n.name}/x"]
            if gx is not None:
                x = torch.cat([x, gx.unsqueeze(1).expand(-1, n.count, -1)], dim=-1)
            # where, not multiply: garbage (even inf/nan) in padded slots must not leak.
            scalars.append(torch.where(keep, x, 0.0))
            rel = (obs[f"{n.name}/pos"] - centroid.unsqueeze(1)).unsqueeze(2)
            vec = torch.cat([rel, obs[f"{n.name}/vec"]], dim=2)  # (B, N_t, K_t + 1, 3)
            vec = torch.where(keep.unsqueeze(-1), squash_vectors(vec), 0.0)
            vectors.append(vec.transpose(-1, -2))
            masks.append(mask)
        mask = (torch.cat(masks, dim=1) > 0.5).to(glob.dtype)
        relations = relation_features(obs, self.spec, self.max_hops) if self.graph_bias else None
        return SETInputs(scalars, vectors, glob, mask, relations)

    # --- outputs --------------------------------------------------------------------------
    def action_mean(self, obs: Obs, inputs: SETInputs, r: Tensor, z: Tensor) -> Tensor:
        """Flat action mean (B, A) from the actor's readout ``r`` and vectors ``z``."""
        batch = r.shape[0]
        glob = inputs.globals_
        means = []
        for group, vhead, shead in zip(
            self.spec.actions, self.vector_heads, self.scalar_heads, strict=True
        ):
            lo, hi = self._slices[group.node_type]
            r_t = r[:, lo:hi]
            if not self._is_vector_head(group):
                out = shead(r_t)
                if self.tanh_scalars:  # odd, so a pseudoscalar's sign convention survives
                    out = torch.tanh(out)
                means.append(out.reshape(batch, -1))
                continue
            u = vhead(z[:, lo:hi], glob)  # (B, N_t, 3, m)
            t_vec = (u * shead(r_t).unsqueeze(-2)).sum(dim=-1)  # (B, N_t, 3)
            if group.kind in _VECTOR_KINDS:
                means.append(t_vec.reshape(batch, -1))
                continue
            node_mask = obs[f"{group.node_type}/mask"].unsqueeze(-1).unsqueeze(-1) > 0.5
            axes = obs[f"{group.node_type}/vec"][:, :, list(group.axis_channels)]
            axes = torch.where(node_mask, axes, 0.0)  # (B, N_t, per_node, 3), raw unit axes
            out = (axes @ t_vec.unsqueeze(-1)).squeeze(-1)
            if self.tanh_scalars:
                out = torch.tanh(out)
            means.append(out.reshape(batch, -1))
        mean = torch.cat(means, dim=-1)
        return torch.where(self.action_node_mask(obs) > 0.5, mean, 0.0)

    def value(self, obs: Obs, inputs: SETInputs, r: Tensor) -> Tensor:
        """Invariant value (B,) from the critic's readout ``r``, the globals' Gram and scalars."""
        glob = inputs.globals_
        gram = (glob.transpose(1, 2) @ glob).flatten(start_dim=1)[:, self._glob_upper]
        parts = [masked_mean(r, inputs.mask), gram]
        if self.spec.global_scalar_names:
            parts.append(obs["global/x"])
        return self.value_head(torch.cat(parts, dim=-1)).squeeze(-1)

    def forward(self, obs: Obs) -> tuple[Tensor, Tensor, Tensor]:
        """Action mean (B, A), action log std (B, A) and value (B,); see :class:`GraphPolicy`."""
        inputs = self.encode_inputs(obs)
        r_pi, z_pi = self.actor(inputs)
        r_vf = r_pi if self.share_encoder else self.critic(inputs)[0]
        mean = self.action_mean(obs, inputs, r_pi, z_pi)
        return mean, self.action_log_std(mean.shape[0]), self.value(obs, inputs, r_vf)

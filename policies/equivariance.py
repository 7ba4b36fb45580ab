"""Measure how far a graph policy is from equivariance on given observations.

Used by the test suite (exact equivariance of HEPi/SET/EMPN on every env) and by training, which
logs the error of the current policy on a few sampled states to TensorBoard.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from equigym.graph import GraphSpec, transform_action, transform_observation
from equigym.policies.base import GraphPolicy


def rotation_about_z(angle: float) -> np.ndarray:
    """Rotation by ``angle`` rad about the vertical axis (gravity points along -z)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A Haar-random rotation in SO(3)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def policy_outputs(
    net: GraphPolicy, obs: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Action mean, log-std and value (float64 numpy) of ``net`` on a batch of observations."""
    device = next(net.parameters()).device
    with torch.no_grad():
        mean, log_std, value = net(
            {k: torch.as_tensor(np.asarray(v), dtype=torch.float32, device=device)
             for k, v in obs.items()}
        )
    return (mean.double().cpu().numpy(), log_std.double().cpu().numpy(),
            value.double().cpu().numpy())


def equivariance_error(
    net: GraphPolicy,
    obs: Mapping[str, np.ndarray],
    spec: GraphSpec,
    transforms: list[tuple[np.ndarray, np.ndarray | None]],
) -> dict[str, float]:
    """Largest deviation from equivariance over ``transforms``.

    For each ``(R, t)``: ``|mean(g·obs) - g·mean(obs)|``, ``|log_std(g·obs) - log_std(obs)|`` and
    ``|value(g·obs) - value(obs)|``, with ``g`` acting as the spec's geometric types say.

    Args:
        net: The policy (evaluated without gradients).
        obs: A batch of observations (numpy, leading batch axis).
        spec: Their graph spec.
        transforms: Rotation matrices and translations (``None``: no translation).

    Returns:
        ``{"mean": e, "log_std": e, "value": e, "max": e}``: largest absolute errors.
    """
    mean, log_std, value = policy_outputs(net, obs)
    err = {"mean": 0.0, "log_std": 0.0, "value": 0.0}
    for rot, t in transforms:
        mean2, log_std2, value2 = policy_outputs(net, transform_observation(obs, spec, rot, t))
        expected = transform_action(mean, spec, rot)
        err["mean"] = max(err["mean"], float(np.abs(mean2 - expected).max()))
        err["log_std"] = max(err["log_std"], float(np.abs(log_std2 - log_std).max()))
        err["value"] = max(err["value"], float(np.abs(value2 - value).max()))
    err["max"] = max(err.values())
    return err


def symmetry_transforms(
    rng: np.random.Generator, n: int = 3
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Random test transformations of two kinds.

    ``"about_gravity"``: rotations about the vertical with horizontal translations (the symmetry
    of tasks whose gravity is fixed); ``"full_rotation"``: any rotation and translation (an
    equivariant network must follow it when gravity, an input vector, is rotated too).
    """
    about = [
        (rotation_about_z(rng.uniform(-np.pi, np.pi)), np.r_[rng.uniform(-3, 3, 2), 0.0])
        for _ in range(n)
    ]
    full = [(random_rotation(rng), rng.uniform(-3, 3, 3)) for _ in range(n)]
    return {"about_gravity": about, "full_rotation": full}


__all__ = [
    "equivariance_error",
    "policy_outputs",
    "random_rotation",
    "rotation_about_z",
    "symmetry_transforms",
]

"""Shared fixtures and helpers for the equigym test suite.

``MUJOCO_GL`` is read when mujoco is imported, so it is set here, before anything imports mujoco:
without a display only EGL renders off-screen (GLFW aborts the process headless).

Helpers are plain functions (``from conftest import assert_equivariant`` works, pytest puts this
folder on ``sys.path``) and are also offered as fixtures of the same name.
"""

from __future__ import annotations

import math
import os

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Callable, Iterable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import equigym  # noqa: E402, F401  (registers the ids)
from equigym.graph import (  # noqa: E402
    ActionGroup,
    EdgeType,
    GraphSpec,
    NodeType,
    stack,
    transform_action,
    transform_observation,
)

ASSETS = Path(__file__).resolve().parent / "assets"
LOCOMOTION_ID = "equigym/Locomotion3D-v0"
FULL_BODIES = ("hopper_5_full", "walker_7_full", "humanoid_9_full", "cheetah_14_full", "ant_9_full")


# --- geometry ---------------------------------------------------------------------------------
def rot_z(phi: float) -> np.ndarray:
    """Rotation by ``phi`` rad about the vertical (gravity) axis."""
    c, s = math.cos(phi), math.sin(phi)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def reflect_vertical_plane(normal_angle: float) -> np.ndarray:
    """Reflection through the vertical plane whose horizontal normal has angle ``normal_angle``."""
    n = np.array([math.cos(normal_angle), math.sin(normal_angle), 0.0])
    return np.eye(3) - 2.0 * np.outer(n, n)


def random_rotation(rng: np.random.Generator, proper: bool = True) -> np.ndarray:
    """A Haar-random element of SO(3) (``proper``) or of O(3) \\ SO(3) (a rotoreflection)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return q


def subequivariant_transforms(
    rng: np.random.Generator, n: int = 4, translate: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(R, t)`` pairs of the task's symmetry group: rotations about gravity, reflections through
    vertical planes and horizontal translations (``t`` is zero when ``translate`` is False)."""
    out = []
    for i in range(n):
        r = rot_z(rng.uniform(-np.pi, np.pi))
        if i % 2 == 1:
            r = reflect_vertical_plane(rng.uniform(-np.pi, np.pi)) @ r
        t = np.zeros(3)
        if translate:
            t[:2] = rng.uniform(-3.0, 3.0, 2)
        out.append((r, t))
    return out


# --- comparisons ------------------------------------------------------------------------------
def max_abs_diff(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per-key largest absolute difference (keys must match)."""
    assert set(a) == set(b), f"key sets differ: {sorted(set(a) ^ set(b))}"
    return {k: float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64))))
            if np.size(a[k]) else 0.0 for k in a}


def assert_obs_close(
    actual: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    atol: float | Mapping[str, float] = 1e-5,
    msg: str = "",
) -> None:
    """Assert two observation dicts agree key by key (``atol`` may be given per key)."""
    diffs = max_abs_diff(actual, expected)
    bad = {}
    for key, d in diffs.items():
        tol = atol.get(key, 1e-5) if isinstance(atol, Mapping) else atol
        if not d <= tol:  # also catches NaN
            bad[key] = (d, tol)
    assert not bad, f"{msg} observation keys differ (max |diff|, atol): {bad}"


def assert_obs_equal(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], msg: str = ""
) -> None:
    """Assert two observation dicts are bit-identical."""
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{msg} key {k}")


def assert_equivariant(
    fn: Callable[[Mapping[str, np.ndarray]], object],
    obs: Mapping[str, np.ndarray],
    spec: GraphSpec,
    transforms: Iterable[tuple[np.ndarray, np.ndarray | None]] | None = None,
    output: str = "action",
    atol: float = 1e-5,
    seed: int = 0,
) -> float:
    """Check ``fn(g . obs) == g . fn(obs)`` for every ``g = (R, t)`` (in the spirit of e3nn's
    ``assert_equivariant``).

    Args:
        fn: Maps an observation dict (single or batched) to its output.
        obs: Input observation.
        spec: The graph spec saying how ``g`` acts on observations and actions.
        transforms: ``(R, t)`` pairs; default: :func:`subequivariant_transforms`.
        output: How ``g`` acts on the output: ``"action"`` (``transform_action``), ``"obs"``
            (``transform_observation``) or ``"invariant"`` (it does not).
        atol: Largest allowed absolute error.
        seed: Seed of the default transforms.

    Returns:
        The largest error seen (so callers can report it).

    Raises:
        AssertionError: If some ``g`` breaks the equivariance by more than ``atol``.
    """
    if transforms is None:
        transforms = subequivariant_transforms(np.random.default_rng(seed))
    y = fn(obs)
    worst = 0.0
    for rot, t in transforms:
        y_of_gx = fn(transform_observation(obs, spec, rot, t))
        if output == "action":
            g_of_y = transform_action(np.asarray(y), spec, rot)
            err = float(np.max(np.abs(np.asarray(y_of_gx, np.float64) - g_of_y), initial=0.0))
        elif output == "obs":
            g_of_y = transform_observation(y, spec, rot, t)
            err = max(max_abs_diff(y_of_gx, g_of_y).values(), default=0.0)
        elif output == "invariant":
            diff = np.asarray(y_of_gx, np.float64) - np.asarray(y, np.float64)
            err = float(np.max(np.abs(diff), initial=0.0))
        else:
            raise ValueError(f"unknown output kind {output!r}")
        assert err <= atol, (
            f"not equivariant: error {err:.3g} > {atol:.3g} for R={np.round(rot, 4).tolist()}, "
            f"det={np.linalg.det(rot):+.0f}, t={None if t is None else np.round(t, 4).tolist()}"
        )
        worst = max(worst, err)
    return worst


def egl_available() -> bool:
    """Whether MuJoCo can make an off-screen OpenGL context here (rendering, OpenGL depth)."""
    import mujoco

    try:
        ctx = mujoco.GLContext(8, 8)
        ctx.make_current()
        ctx.free()
        return True
    except Exception:  # noqa: BLE001 - any failure means no off-screen GL here
        return False


def all_finite(obs: Mapping[str, np.ndarray]) -> bool:
    """Whether every entry of every key is finite."""
    return all(np.isfinite(v).all() for v in obs.values())


def make_env(morphology: str | None = None, **kwargs) -> gym.Env:
    """``gym.make`` of the generic locomotion id, returning the unwrapped env."""
    if morphology is not None:
        kwargs["morphology"] = morphology
    return gym.make(LOCOMOTION_ID, **kwargs).unwrapped


def make_unwrapped(env_id: str, **kwargs) -> gym.Env:
    """``gym.make(env_id, **kwargs).unwrapped`` (direct access to the env's state)."""
    return gym.make(env_id, **kwargs).unwrapped


def rollout(env: gym.Env, seed: int, actions, options=None) -> list[tuple]:
    """``(obs, reward, info)`` after a seeded reset (reward 0) and after each of ``actions``."""
    obs, info = env.reset(seed=seed, options=options)
    traj = [(obs, 0.0, info)]
    for a in actions:
        obs, reward, _, _, info = env.step(a)
        traj.append((obs, reward, info))
    return traj


# --- data ---------------------------------------------------------------------------------------
def random_rollouts(
    envs: Iterable[gym.Env], steps: int = 3, seed: int = 0, include_reset: bool = True
) -> dict[str, np.ndarray]:
    """Reset env ``i`` with ``seed + i`` and take ``steps`` seeded random actions; stack the
    visited observations (numpy). The envs are closed."""
    obs = []
    for i, env in enumerate(envs):
        env.action_space.seed(seed + i)
        o, _ = env.reset(seed=seed + i)
        if include_reset:
            obs.append(o)
        for _ in range(steps):
            o, *_ = env.step(env.action_space.sample())
            obs.append(o)
        env.close()
    return stack(obs)


TOY_EDGES = (
    EdgeType("arm", "link", "arm", 3),
    EdgeType("arm", "touches", "object", 5, ("distance", "force")),
    EdgeType("object", "touched_by", "arm", 5),
)
"""Edge types of :func:`toy_spec`: within arms, arm -> object (with features), object -> arm."""


def toy_spec(
    actions: tuple[ActionGroup, ...], edge_types: tuple[EdgeType, ...] = TOY_EDGES
) -> GraphSpec:
    """A hand-built spec: 4 ``arm`` nodes (scalars a, b; vectors vel, axis (pseudo)), 3
    ``object`` nodes (scalar mass; vector vel), global vectors gravity and goal, global scalar
    time, and the given edge types and action groups."""
    return GraphSpec(
        node_types=(
            NodeType("arm", 4, ("a", "b"), ("vel", "axis"), ("vector", "pseudovector")),
            NodeType("object", 3, ("mass",), ("vel",), ("vector",)),
        ),
        edge_types=edge_types,
        global_vector_names=("gravity", "goal"),
        global_vector_kinds=("vector", "vector"),
        global_scalar_names=("time",),
        actions=actions,
    )


def toy_counts(b: int) -> dict[str, int]:
    """Real nodes of :func:`toy_batch` sample ``b``: ``b % 3 + 2`` arms, ``1 + b % 2`` objects."""
    return {"arm": b % 3 + 2, "object": 1 + b % 2}


def toy_batch(
    spec: GraphSpec,
    batch: int = 5,
    seed: int = 0,
    zero_padded: tuple[str, ...] = (),
    real_edges: int | None = None,
) -> dict[str, np.ndarray]:
    """Random (normal) observations of a :func:`toy_spec` spec, with :func:`toy_counts` real nodes.

    Args:
        spec: The spec.
        batch: Samples.
        seed: Seed of the data.
        zero_padded: Node parts (``"x"``, ``"pos"``, ``"vec"``) zeroed on padded nodes.
        real_edges: Real edges per edge type (default ``min(count, n_source + n_target - 1)``);
            their endpoints are random real nodes.

    ``action_mask`` is left random: callers set it for their action groups.
    """
    rng = np.random.default_rng(seed)
    out = {k: rng.normal(size=(batch, *ks.shape)).astype(np.float32) for k, ks in spec.keys.items()}
    for b in range(batch):
        counts = toy_counts(b)
        for n in spec.node_types:
            real = np.arange(n.count) < counts[n.name]
            out[f"{n.name}/mask"][b] = real
            for part in zero_padded:
                out[f"{n.name}/{part}"][b][~real] = 0.0
        for e in spec.edge_types:
            ns, nt = counts[e.source], counts[e.target]
            out[f"{e.key}/index"][b, 0] = rng.integers(0, ns, e.count)
            out[f"{e.key}/index"][b, 1] = rng.integers(0, nt, e.count)
            n_real = min(e.count, ns + nt - 1) if real_edges is None else real_edges
            out[f"{e.key}/mask"][b] = np.arange(e.count) < n_real
    return out


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
def assets() -> Path:
    """Folder of the test XMLs."""
    return ASSETS


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator (fresh per test)."""
    return np.random.default_rng(12345)


@pytest.fixture
def walker():
    """Unwrapped full walker env, closed after the test."""
    env = make_env("walker_7_full")
    yield env
    env.close()


@pytest.fixture(name="assert_equivariant")
def _assert_equivariant_fixture():
    return assert_equivariant


@pytest.fixture(name="assert_obs_close")
def _assert_obs_close_fixture():
    return assert_obs_close


@pytest.fixture
def no_mujoco_log(tmp_path, monkeypatch):
    """Run in a temporary folder: MuJoCo writes ``MUJOCO_LOG.TXT`` into the cwd on warnings."""
    monkeypatch.chdir(tmp_path)
    return tmp_path

"""SB3 vector envs of equigym envs, including multi-morphology batches padded to one size."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

VEC_ENV_KINDS: tuple[str, ...] = ("dummy", "subproc")
"""Values of ``make_vec_env(vec_env=...)``: one process, or one process per sub-env."""


def check_env_id(env_id: str) -> None:
    """Raise a ``ValueError`` listing the equigym ids if ``env_id`` is not one of them.

    Only equigym ids qualify: other Gymnasium envs have no graph observation.
    """
    import equigym  # registers the ids

    if env_id not in equigym.ENV_IDS:
        raise ValueError(
            f"Unknown env id {env_id!r}: it is not an equigym env (graph policies need the graph "
            f"observation). Equigym ids: {', '.join(equigym.ENV_IDS)}."
        )


def check_morphologies(env_id: str, morphologies: list[str] | None) -> None:
    """Raise a ``ValueError`` if ``morphologies`` do not belong to ``env_id``.

    ``equigym/Locomotion3D-v0`` takes any built-in morphology; a family id such as
    ``equigym/Walker3D-v0`` takes only its own family's (so the run's env id says what it trains);
    other envs take none.
    """
    if not morphologies:
        return
    from equigym.envs.registration import LOCOMOTION_IDS

    if env_id == "equigym/Locomotion3D-v0":
        return
    if env_id not in LOCOMOTION_IDS:
        raise ValueError(f"{env_id} has no morphologies; drop --morphologies for it.")
    family = LOCOMOTION_IDS[env_id].split("_", 1)[0]
    others = [m for m in morphologies if m.split("_", 1)[0] != family]
    if others:
        raise ValueError(
            f"{env_id} trains the {family} family, but {others} are not {family} morphologies; "
            "use equigym/Locomotion3D-v0 to mix families."
        )


def sub_env_kwargs(
    n_envs: int, morphologies: list[str] | None = None, env_kwargs: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Constructor kwargs of each sub-env: morphology ``i % len(morphologies)``, common padding.

    Args:
        n_envs: Number of sub-envs.
        morphologies: Built-in morphology names, or ``None`` for the env id's own robot.
        env_kwargs: Further env kwargs for every sub-env (a ``max_nodes`` here must be at least
            the largest morphology's node count).

    Returns:
        One kwargs dict per sub-env.
    """
    base = dict(env_kwargs or {})
    if not morphologies:
        return [dict(base) for _ in range(n_envs)]
    from equigym.envs.locomotion import max_nodes  # validates the names too

    # Every sub-env must pad to the same node count, or SB3 sees different spaces.
    base["max_nodes"] = max(int(base.get("max_nodes") or 0), max_nodes(list(morphologies)))
    return [dict(base, morphology=morphologies[i % len(morphologies)]) for i in range(n_envs)]


def _env_factory(
    env_id: str, kwargs: dict[str, Any], wrapper: Callable[[gym.Env], gym.Env] | None = None
) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        import equigym  # noqa: F401  (subprocesses must register the ids themselves)

        env = gym.make(env_id, **kwargs)
        return Monitor(env if wrapper is None else wrapper(env))

    return make


def make_vec_env(
    env_id: str,
    n_envs: int,
    seed: int,
    morphologies: list[str] | None = None,
    vec_env: str = "dummy",
    env_kwargs: dict[str, Any] | None = None,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> VecEnv:
    """An SB3 vector env of ``n_envs`` Monitor-wrapped equigym envs.

    With ``morphologies``, sub-env ``i`` gets ``morphologies[i % len(morphologies)]`` and every
    sub-env is padded to the largest morphology's node count, so all share one observation and
    action space (and one graph spec): a multi-morphology batch for one graph policy. Sub-env
    ``i`` is seeded with ``seed + i`` at its first reset.

    ``vec_env="subproc"`` starts one process per sub-env; scripts using it need the
    ``if __name__ == "__main__":`` guard.

    Args:
        env_id: Registered equigym id, e.g. ``"equigym/Walker3D-v0"``.
        n_envs: Number of sub-envs (>= 1).
        seed: Base seed.
        morphologies: Built-in morphology names (see
            :func:`equigym.envs.locomotion.resolve_morphologies`), or ``None``.
        vec_env: ``"dummy"`` (sequential, one process) or ``"subproc"``.
        env_kwargs: Extra keyword arguments for ``gym.make``.
        wrapper: Applied to each sub-env inside its Monitor (e.g. a
            :class:`~equigym.modules.forecast.wrapper.ForecastWrapper`; picklable for
            ``"subproc"``). Its ``graph_spec`` attribute, if any, is the one SB3 sees.

    Returns:
        The vector env (``VecEnv``).

    Raises:
        ValueError: For an unknown env id, morphology or ``vec_env`` kind, ``n_envs < 1``, or
            sub-envs whose graph specs differ.
    """
    check_env_id(env_id)
    check_morphologies(env_id, morphologies)
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if vec_env not in VEC_ENV_KINDS:
        raise ValueError(f"Unknown vec_env {vec_env!r}; choose one of {', '.join(VEC_ENV_KINDS)}.")
    if morphologies and n_envs < len(morphologies):
        warnings.warn(
            f"n_envs={n_envs} < {len(morphologies)} morphologies: "
            f"{morphologies[n_envs:]} will not be used",
            stacklevel=2,
        )
    factories = [
        _env_factory(env_id, kw, wrapper)
        for kw in sub_env_kwargs(n_envs, morphologies, env_kwargs)
    ]
    venv: VecEnv = DummyVecEnv(factories) if vec_env == "dummy" else SubprocVecEnv(factories)
    venv.seed(seed)
    venv.action_space.seed(seed)
    specs = venv.get_attr("graph_spec")
    if any(s != specs[0] for s in specs[1:]):
        venv.close()
        raise ValueError("sub-envs have different graph specs; pad them to one max_nodes")
    return venv


__all__ = [
    "VEC_ENV_KINDS",
    "check_env_id",
    "check_morphologies",
    "make_vec_env",
    "sub_env_kwargs",
]

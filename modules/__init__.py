"""Modules that run inside the RL loop.

- :mod:`equigym.modules.perception`: node positions from simulated sensors (levels 0-2);
- :mod:`equigym.modules.forecast`: predicted displacements of a node type (EqMotion-style).

:func:`module_wrapper` builds the per-env wrapper a run uses (perception first, so the forecaster
sees perceived positions).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym


def _compose(env: gym.Env, wrappers: tuple[Callable[[gym.Env], gym.Env], ...]) -> gym.Env:
    for wrap in wrappers:
        env = wrap(env)
    return env


def module_wrapper(
    forecast: Any = None,
    perception: int | None = None,
    perception_net: Any = None,
    perception_settings: dict[str, Any] | None = None,
) -> Callable[[gym.Env], gym.Env] | None:
    """The per-env wrapper for a forecaster folder and/or a perception level (``None``: none).

    Picklable (``functools.partial``), so sub-process vector envs can build it.

    Raises:
        ValueError: For a bad perception level or settings, or a missing keypoint network.
        FileNotFoundError: For a missing forecaster or network file.
    """
    wrappers = []
    if perception is not None:
        from equigym.modules.perception.wrapper import perception_wrapper

        wrappers.append(perception_wrapper(perception, perception_net, perception_settings))
    if forecast is not None:
        from equigym.modules.forecast.wrapper import forecast_wrapper

        wrappers.append(forecast_wrapper(forecast))
    if not wrappers:
        return None
    return wrappers[0] if len(wrappers) == 1 else functools.partial(_compose,
                                                                      wrappers=tuple(wrappers))


__all__ = ["module_wrapper"]

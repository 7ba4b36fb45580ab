"""equigym: MuJoCo environments with heterogeneous graph observations for equivariant RL.

Importing the package registers every environment id ``equigym/<Name>-v<N>`` with Gymnasium::

    import gymnasium as gym
    import equigym  # noqa: F401  (registers the ids)

    env = gym.make("equigym/Walker3D-v0", morphology="walker_6_right_foot")
"""

from __future__ import annotations

import os as _os

# MuJoCo reads MUJOCO_GL at import time; without a display, EGL is the only backend that renders
# off-screen out of the box (GLFW aborts the process headless).
if not _os.environ.get("DISPLAY") and not _os.environ.get("MUJOCO_GL"):
    _os.environ["MUJOCO_GL"] = "egl"

from equigym.envs.registration import register_envs as _register_envs  # noqa: E402

__version__ = "0.1.0"

ENV_IDS: tuple[str, ...] = _register_envs()
"""Every environment id registered by equigym."""

__all__ = ["ENV_IDS", "__version__"]

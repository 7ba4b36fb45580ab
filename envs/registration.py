"""Gymnasium registration of every equigym env id (entry points stay strings: lazy imports)."""

from __future__ import annotations

import gymnasium as gym

_LOCOMOTION = "equigym.envs.locomotion.locomotion_v0:Locomotion3DEnv"
_RIGID = "equigym.envs.manipulation.rigid_v0:RigidManipulationEnv"
_ROPE = "equigym.envs.manipulation.rope_v0:RopeEnv"
_CLOTH = "equigym.envs.manipulation.cloth_v0:ClothHangingEnv"
_EPISODE_STEPS = 1000

# Family → its full body (one registered id per family).
LOCOMOTION_IDS: dict[str, str] = {
    "equigym/Hopper3D-v0": "hopper_5_full",
    "equigym/Walker3D-v0": "walker_7_full",
    "equigym/Humanoid3D-v0": "humanoid_9_full",
    "equigym/Cheetah3D-v0": "cheetah_14_full",
    "equigym/Ant3D-v0": "ant_9_full",
}

# Rigid manipulation: id -> task (the env truncates its own episodes, so no TimeLimit: a user's
# episode_steps= must not be cut short by a registered limit).
MANIPULATION_IDS: dict[str, str] = {
    "equigym/Sliding-v0": "sliding",
    "equigym/Pushing-v0": "pushing",
    "equigym/Insertion-v0": "insertion",
    "equigym/InsertionTwoAgents-v0": "two_agents",
}

# Deformable manipulation: id -> task (these envs truncate their own episodes too).
DEFORMABLE_IDS: dict[str, str] = {
    "equigym/RopeClosing-v0": "rope_closing",
    "equigym/RopeShaping-v0": "rope_shaping",
    "equigym/ClothHanging-v0": "cloth_hanging",
}
_DEFORMABLE_ENTRY = {
    "rope_closing": (_ROPE, {"task": "closing"}),
    "rope_shaping": (_ROPE, {"task": "shaping"}),
    "cloth_hanging": (_CLOTH, {}),
}


def register_envs() -> tuple[str, ...]:
    """Register every equigym id (idempotent) and return the ids."""
    ids = {"equigym/Locomotion3D-v0": {}}
    ids.update({env_id: {"morphology": m} for env_id, m in LOCOMOTION_IDS.items()})
    for env_id, kwargs in ids.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=_LOCOMOTION,
                max_episode_steps=_EPISODE_STEPS,
                kwargs=kwargs,
            )
    for env_id, task in MANIPULATION_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=_RIGID, kwargs={"task": task})
    for env_id, task in DEFORMABLE_IDS.items():
        if env_id not in gym.registry:
            entry, kwargs = _DEFORMABLE_ENTRY[task]
            gym.register(id=env_id, entry_point=entry, kwargs=kwargs)
    return (*ids, *MANIPULATION_IDS, *DEFORMABLE_IDS)

"""Perception inside the RL loop: node positions from simulated sensors (levels 0, 1, 2).

See :mod:`~equigym.modules.perception.levels` for the levels,
:mod:`~equigym.modules.perception.wrapper` for the Gymnasium wrapper and
``python -m equigym.modules.perception.train`` for the level-2 keypoint network.
"""

from equigym.modules.perception.levels import (
    GeometricPerception,
    KeypointPerception,
    NoisyGroundTruth,
    Perception,
    make_perception,
)
from equigym.modules.perception.wrapper import PerceptionWrapper, perception_wrapper

__all__ = [
    "GeometricPerception",
    "KeypointPerception",
    "NoisyGroundTruth",
    "Perception",
    "PerceptionWrapper",
    "make_perception",
    "perception_wrapper",
]

"""Rigid manipulation of varied shapes: Sliding, Pushing, Insertion, InsertionTwoAgents."""

from equigym.envs.manipulation.rigid_v0 import RigidManipulationEnv, make_spec
from equigym.envs.manipulation.scene import TASKS, Task
from equigym.envs.manipulation.shapes import (
    CLEARANCE,
    SHAPE_NAMES,
    SPLITS,
    TEST_SHAPES,
    TRAIN_SHAPES,
    Shape,
    get_shape,
    make_shape,
)

__all__ = [
    "CLEARANCE",
    "SHAPE_NAMES",
    "SPLITS",
    "TASKS",
    "TEST_SHAPES",
    "TRAIN_SHAPES",
    "RigidManipulationEnv",
    "Shape",
    "Task",
    "get_shape",
    "make_shape",
    "make_spec",
]

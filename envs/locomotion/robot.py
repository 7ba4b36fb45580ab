"""Read the graph of a free-floating articulated robot out of any compiled MuJoCo model.

One node per body of the robot's tree (the root body with its free joint first, then MuJoCo's
body order, which is a pre-order walk of the XML), edges along the kinematic tree, up to
:data:`HINGES_PER_NODE` hinge slots per node and each actuator mapped to the slot of the hinge it
drives.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from equigym.envs.locomotion.morphologies import LIMB_TYPES

HINGES_PER_NODE = 3
"""Hinge slots per node (x, y, z for the built-in families): also the action size per node."""


@dataclass(frozen=True)
class Robot:
    """Index arrays that map MuJoCo's arrays to graph nodes (all numpy, built once).

    Attributes:
        body_ids: (n,) MuJoCo body id of each node; node 0 is the root.
        parents: (n,) parent node of each node (-1 for the root).
        names: Body name of each node.
        limb_type: (n,) index into :data:`LIMB_TYPES`.
        hinge_jnt: (n, 3) joint id in each hinge slot (0 where the slot is empty).
        hinge_present: (n, 3) 1.0 where the slot holds a hinge.
        hinge_qadr: (n, 3) qpos address of each slot's hinge (0 where empty).
        hinge_range: (n, 3, 2) joint range, rad (lo = -pi, hi = pi for unlimited hinges).
        act_slot: (nu,) flat ``node * 3 + slot`` index driven by each actuator.
        root_qpos: qpos address of the root's free joint.
        root_dof: qvel address of the root's free joint.
    """

    body_ids: np.ndarray
    parents: np.ndarray
    names: tuple[str, ...]
    limb_type: np.ndarray
    hinge_jnt: np.ndarray
    hinge_present: np.ndarray
    hinge_qadr: np.ndarray
    hinge_range: np.ndarray
    act_slot: np.ndarray
    root_qpos: int
    root_dof: int

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.body_ids)


def _name(model: mujoco.MjModel, obj: mujoco.mjtObj, i: int, fallback: str) -> str:
    return mujoco.mj_id2name(model, obj, i) or fallback


def limb_type_of(name: str) -> int:
    """Index of the first limb type whose name appears in ``name`` (``other`` if none)."""
    low = name.lower()
    for i, t in enumerate(LIMB_TYPES[:-1]):
        if t in low:
            return i
    return len(LIMB_TYPES) - 1


def parse_robot(model: mujoco.MjModel, source: str = "model") -> Robot:
    """Extract the robot graph, or explain why the model does not fit.

    Requirements: exactly one body tree with joints, whose root body is a child of the world with
    a free joint; every other joint in that tree is a hinge, at most three per body; every
    actuator drives one of those hinges through a joint transmission; at least one actuator.
    Bodies outside the tree without joints (static scenery) are allowed and ignored.

    Raises:
        ValueError: Saying which requirement fails and how to fix the XML.
    """
    fix = f" ({source}: equigym's locomotion env needs a free-floating robot with actuated hinges)"
    jt = model.jnt_type
    free = np.flatnonzero(jt == mujoco.mjtJoint.mjJNT_FREE)
    if len(free) != 1:
        raise ValueError(
            f"Expected exactly one free joint (the robot's root), found {len(free)}." + fix
        )
    root = int(model.jnt_bodyid[free[0]])
    if model.body_parentid[root] != 0:
        raise ValueError(
            f"The free joint is on body "
            f"{_name(model, mujoco.mjtObj.mjOBJ_BODY, root, str(root))!r},"
            " which is not a child of the worldbody; put the free joint on the robot's root." + fix
        )
    in_tree = model.body_rootid == root
    in_tree[0] = False
    body_ids = np.flatnonzero(in_tree)
    jointed_elsewhere = {
        int(model.jnt_bodyid[j]) for j in range(model.njnt) if not in_tree[model.jnt_bodyid[j]]
    }
    if jointed_elsewhere:
        names = [_name(model, mujoco.mjtObj.mjOBJ_BODY, b, str(b)) for b in jointed_elsewhere]
        raise ValueError(f"Bodies outside the robot's tree have joints: {names}." + fix)
    node_of = {int(b): i for i, b in enumerate(body_ids)}
    n = len(body_ids)
    hinge_jnt = np.zeros((n, HINGES_PER_NODE), np.int64)
    present = np.zeros((n, HINGES_PER_NODE))
    qadr = np.zeros((n, HINGES_PER_NODE), np.int64)
    rng = np.zeros((n, HINGES_PER_NODE, 2))
    rng[..., 0], rng[..., 1] = -np.pi, np.pi
    slots = np.zeros(n, np.int64)
    slot_of_joint: dict[int, int] = {}
    for j in range(model.njnt):
        if j == free[0]:
            continue
        jname = _name(model, mujoco.mjtObj.mjOBJ_JOINT, j, f"joint {j}")
        if jt[j] != mujoco.mjtJoint.mjJNT_HINGE:
            kind = mujoco.mjtJoint(jt[j]).name.removeprefix("mjJNT_").lower()
            raise ValueError(
                f"Joint {jname!r} is a {kind} joint; only hinge joints are supported below the "
                "root (model ball joints as three hinges)." + fix
            )
        node = node_of[int(model.jnt_bodyid[j])]
        if slots[node] == HINGES_PER_NODE:
            body = _name(model, mujoco.mjtObj.mjOBJ_BODY, int(body_ids[node]), str(node))
            raise ValueError(
                f"Body {body!r} has more than {HINGES_PER_NODE} hinges; split it into bodies with "
                f"at most {HINGES_PER_NODE} hinges each." + fix
            )
        s = slots[node]
        slots[node] += 1
        hinge_jnt[node, s] = j
        present[node, s] = 1.0
        qadr[node, s] = model.jnt_qposadr[j]
        if model.jnt_limited[j]:
            rng[node, s] = model.jnt_range[j]
        slot_of_joint[j] = node * HINGES_PER_NODE + s
    if model.nu == 0:
        raise ValueError("The model has no actuators; add a <motor joint=...> per hinge." + fix)
    act_slot = np.zeros(model.nu, np.int64)
    for a in range(model.nu):
        aname = _name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a, f"actuator {a}")
        target = int(model.actuator_trnid[a, 0])
        if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT or target not in slot_of_joint:
            raise ValueError(
                f"Actuator {aname!r} does not drive a hinge of the robot through a joint "
                "transmission (<motor joint=\"...\">)." + fix
            )
        act_slot[a] = slot_of_joint[target]
    if len(np.unique(act_slot)) != len(act_slot):
        raise ValueError("Two actuators drive the same hinge; keep one actuator per hinge." + fix)
    parents = np.array([node_of.get(int(model.body_parentid[b]), -1) for b in body_ids])
    names = tuple(_name(model, mujoco.mjtObj.mjOBJ_BODY, int(b), f"body{b}") for b in body_ids)
    return Robot(
        body_ids=body_ids,
        parents=parents,
        names=names,
        limb_type=np.array([0] + [limb_type_of(x) for x in names[1:]]),
        hinge_jnt=hinge_jnt,
        hinge_present=present,
        hinge_qadr=qadr,
        hinge_range=rng,
        act_slot=act_slot,
        root_qpos=int(model.jnt_qposadr[free[0]]),
        root_dof=int(model.jnt_dofadr[free[0]]),
    )

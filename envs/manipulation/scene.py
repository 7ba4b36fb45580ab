"""Task definitions and MJCF scenes of the rigid manipulation suite.

Sliding, Pushing, Insertion and InsertionTwoAgents follow the HEPi benchmark (Hoang et al., ICLR
2025, arXiv:2502.07005).

Every scene is generated from a :class:`~equigym.envs.manipulation.shapes.Shape`: the object is
a union of convex prisms (MuJoCo collides meshes as convex hulls), the hole fixture a union of
convex prisms around a pocket :data:`~equigym.envs.manipulation.shapes.CLEARANCE` wider than the
outline, and the target a non-colliding translucent copy of the object.

**Grippers are velocity-actuated joints**, not mocap + weld: each commanded velocity drives a
MuJoCo ``velocity`` actuator (force ``kv (v_cmd - v)``), on the object's world-aligned slide and
yaw-hinge joints (suction grippers) or on the pusher's slides, or through a world-frame site
transmission at each gripper point (two-agent insertion). The law is linear and the same for x,
y and z, so it commutes with rotations; contacts and friction act on the real dynamics (a mocap
weld would hide them behind a constraint spring) and the state is plain ``qpos``/``qvel``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from equigym.envs.manipulation.shapes import HEIGHT, Shape

TIMESTEP = 0.002  # s, physics step (small enough for 3 mm clearances)
FRAME_SKIP = 20  # physics steps per control step: dt = 0.04 s, as the reference's control rate
INSERT_DEPTH = 0.02  # m, depth of the fixture's pocket
BASE_THICKNESS = 0.02  # m, floor of a floating (two-agent) fixture under its pocket
GRIPPER_OFFSET = 0.05  # m, two-agent grippers sit at object-local (0, +-0.05, 0)
FRICTION = 0.5  # sliding friction coefficient of every contact
PUSHER_SIZE = (0.025, 0.25)  # m, radius and half-length of the pusher rod (a cylinder: a box
# on world-aligned slides would keep its world orientation when the scene turns)
PUSHER_LIFT = 0.005  # m, gap between the pusher rod and the floor
INSERTION_TARGET_Z = 0.25  # m, target centroid height of Insertion (on a standing fixture)
FREE_DAMPING = 0.05  # N m s/rad (and N s/m), damping of the two-agent object's free joint


@dataclass(frozen=True)
class Task:
    """One rigid task: scene, actuation, sampling, reward weights and success tolerances.

    Attributes:
        name: Task name (``"sliding"``, ``"pushing"``, ``"insertion"``, ``"two_agents"``).
        actuators: Number of gripper (actuator) nodes.
        yaw: The (single) gripper also commands a yaw rate about the vertical, through the
            object's centroid (a pseudoscalar action).
        planar: Motion in the horizontal plane: the vertical velocity command is ignored (and
            masked out of the action), and the task's symmetry is rotation about gravity.
        fixture: The scene has a hole fixture and the object goes into it.
        object_mass: kg.
        kv_lin: Velocity-actuator gain of linear commands, N s/m.
        kv_yaw: Velocity-actuator gain of the yaw command, N m s/rad.
        max_speed: Linear speed of a full action, m/s.
        max_yaw_rate: Yaw rate of a full action, rad/s.
        episode_steps: Control steps per episode.
        w_pos, w_rot, w_z: Weights of distance, orientation error and height error in the pose
            penalty ``-w_pos (d + w_rot theta + w_z |dz|)``.
        final_steps: The last ``final_steps`` steps multiply ``d`` by ``final_pos`` and
            ``theta`` by ``final_rot``.
        w_ctrl: Weight of the command penalty ``-w_ctrl (|a_v| + |a_yaw|)`` on the normalised
            (clipped, length-limited) action entries.
        w_rate: Weight of the action-rate penalty ``-w_rate sum (a_t - a_t-1)^2``.
        w_contact: Weight of the pusher-distance penalty ``-w_contact |p_obj - p_pusher|``.
        success_pos: Largest centroid distance of a success, m.
        success_rot: Largest symmetry-aware orientation error of a success, rad.
    """

    name: str
    actuators: int
    yaw: bool
    planar: bool
    fixture: bool
    object_mass: float
    kv_lin: float
    kv_yaw: float
    max_speed: float
    max_yaw_rate: float
    episode_steps: int
    w_pos: float
    w_rot: float
    w_z: float
    final_steps: int
    final_pos: float
    final_rot: float
    w_ctrl: float
    w_rate: float
    w_contact: float
    success_pos: float
    success_rot: float


TASKS: dict[str, Task] = {
    "sliding": Task(
        name="sliding", actuators=1, yaw=True, planar=True, fixture=False, object_mass=0.2,
        kv_lin=50.0, kv_yaw=0.5, max_speed=1.0, max_yaw_rate=3.0, episode_steps=100,
        w_pos=0.8, w_rot=0.5, w_z=0.0, final_steps=2, final_pos=5.0, final_rot=5.0,
        w_ctrl=0.1, w_rate=2e-3, w_contact=0.0, success_pos=0.02, success_rot=0.1,
    ),
    "pushing": Task(
        name="pushing", actuators=1, yaw=False, planar=True, fixture=False, object_mass=3.0,
        kv_lin=300.0, kv_yaw=0.0, max_speed=1.0, max_yaw_rate=0.0, episode_steps=100,
        w_pos=0.8, w_rot=0.1, w_z=0.0, final_steps=5, final_pos=10.0, final_rot=10.0,
        w_ctrl=0.0, w_rate=0.0, w_contact=0.2, success_pos=0.05, success_rot=0.35,
    ),
    "insertion": Task(
        name="insertion", actuators=1, yaw=True, planar=False, fixture=True, object_mass=0.2,
        kv_lin=50.0, kv_yaw=0.5, max_speed=1.0, max_yaw_rate=3.0, episode_steps=100,
        w_pos=0.8, w_rot=0.5, w_z=0.5, final_steps=2, final_pos=5.0, final_rot=5.0,
        w_ctrl=0.0, w_rate=0.0, w_contact=0.0, success_pos=0.01, success_rot=0.1,
    ),
    "two_agents": Task(
        name="two_agents", actuators=2, yaw=False, planar=False, fixture=True, object_mass=0.2,
        kv_lin=100.0, kv_yaw=0.0, max_speed=1.0, max_yaw_rate=0.0, episode_steps=100,
        w_pos=0.8, w_rot=0.1, w_z=0.0, final_steps=2, final_pos=5.0, final_rot=7.5,
        w_ctrl=0.0, w_rate=0.0, w_contact=0.0, success_pos=0.01, success_rot=0.1,
    ),
}


def _fmt(values) -> str:
    return " ".join(f"{v:.9g}" for v in np.asarray(values, dtype=np.float64).ravel())


def _prism(name: str, poly: np.ndarray, z0: float, z1: float) -> str:
    """A ``<mesh>`` asset: the convex polygon extruded from ``z0`` to ``z1``."""
    bottom = np.column_stack([poly, np.full(len(poly), z0)])
    top = np.column_stack([poly, np.full(len(poly), z1)])
    return f'<mesh name="{name}" vertex="{_fmt(np.vstack([bottom, top]))}"/>'


def build_xml(task: Task, shape: Shape) -> str:
    """The MJCF of ``task`` with ``shape``, in the canonical frame (poses are set at reset).

    Bodies: ``object`` (centroid at its origin, outline in its local xy plane), ``target``
    (mocap, no collision), ``fixture`` (mocap, only if ``task.fixture``), ``pusher`` (pushing).
    Sites: ``grip0`` (and ``grip1``) at the gripper points; ``world_frame`` at the origin.
    """
    h = HEIGHT / 2
    assets, obj_geoms, ghost_geoms, fixture_geoms = [], [], [], []
    density = task.object_mass / (shape.area * HEIGHT)
    for k, piece in enumerate(shape.pieces):
        assets.append(_prism(f"obj{k}", piece, -h, h))
        obj_geoms.append(
            f'<geom name="object_{k}" type="mesh" mesh="obj{k}" density="{density:.9g}" '
            'material="object" contype="1" conaffinity="3"/>'
        )
        ghost_geoms.append(
            f'<geom type="mesh" mesh="obj{k}" contype="0" conaffinity="0" group="2" '
            'material="ghost" mass="0"/>'
        )
    if task.fixture:
        base = task.name == "insertion"
        wall0, wall1 = -h, -h + INSERT_DEPTH
        for k, piece in enumerate(shape.hole_pieces):
            assets.append(_prism(f"hole{k}", piece, wall0, wall1))
            fixture_geoms.append(
                f'<geom name="fixture_{k}" type="mesh" mesh="hole{k}" material="fixture" '
                'contype="2" conaffinity="1"/>'
            )
        half = shape.plate_half
        # Insertion's fixture stands on the floor (its target centroid is 0.25 m up); the
        # two-agent fixture floats, with a thin floor under its pocket.
        depth = (INSERTION_TARGET_Z - h) / 2 if base else BASE_THICKNESS / 2
        fixture_geoms.append(
            f'<geom name="fixture_base" type="box" size="{half:.9g} {half:.9g} {depth:.9g}" '
            f'pos="0 0 {wall0 - depth:.9g}" material="fixture" contype="2" conaffinity="1"/>'
        )

    joints, actuators, grippers = [], [], []
    kv, kvy = task.kv_lin, task.kv_yaw
    if task.name == "two_agents":
        # Two point grippers cannot exert a torque about the line through them: damping keeps
        # that rotation from drifting (it changes only through contacts).
        joints.append(f'<joint name="object_free" type="free" damping="{FREE_DAMPING}"/>')
        for g, y in enumerate((GRIPPER_OFFSET, -GRIPPER_OFFSET)):
            grippers.append(
                f'<site name="grip{g}" pos="0 {y:.9g} 0" size="0.005"/>'
                f'<geom type="box" size="0.0125 0.0125 0.0125" pos="0 {y:.9g} {h + 0.0125:.9g}" '
                'contype="0" conaffinity="0" mass="0" material="gripper"/>'
            )
            for a, gear in zip("xyz", ("1 0 0 0 0 0", "0 1 0 0 0 0", "0 0 1 0 0 0"), strict=True):
                actuators.append(
                    f'<velocity name="grip{g}_v{a}" site="grip{g}" refsite="world_frame" '
                    f'gear="{gear}" kv="{kv:.9g}"/>'
                )
    else:
        for a, axis in zip("xyz", ("1 0 0", "0 1 0", "0 0 1"), strict=True):
            joints.append(f'<joint name="object_{a}" type="slide" axis="{axis}"/>')
        joints.append('<joint name="object_yaw" type="hinge" axis="0 0 1"/>')
        if task.name != "pushing":
            grippers.append(
                f'<site name="grip0" pos="0 0 {h:.9g}" size="0.005"/>'
                f'<geom type="cylinder" size="0.012 0.006" pos="0 0 {h + 0.006:.9g}" '
                'contype="0" conaffinity="0" mass="0" material="gripper"/>'
            )
            axes = "xyz" if task.name == "insertion" else "xy"
            for a in axes:
                actuators.append(f'<velocity name="grip0_v{a}" joint="object_{a}" kv="{kv:.9g}"/>')
            actuators.append(f'<velocity name="grip0_yaw" joint="object_yaw" kv="{kvy:.9g}"/>')
        else:
            actuators += [
                f'<velocity name="pusher_v{a}" joint="pusher_{a}" kv="{kv:.9g}"/>' for a in "xy"
            ]

    pusher = ""
    if task.name == "pushing":
        radius, sz = PUSHER_SIZE
        pusher = (
            f'<body name="pusher" pos="0 0 {PUSHER_LIFT + sz:.9g}">'
            '<joint name="pusher_x" type="slide" axis="1 0 0"/>'
            '<joint name="pusher_y" type="slide" axis="0 1 0"/>'
            f'<geom name="pusher" type="cylinder" size="{radius} {sz}" mass="1" material="gripper" '
            'contype="2" conaffinity="2"/>'
            f'<site name="grip0" pos="0 0 {-sz + HEIGHT / 2 - PUSHER_LIFT:.9g}" size="0.005"/>'
            "</body>"
        )
    floor = ""
    if task.name != "two_agents":  # the two-agent scene floats (and may be tilted)
        floor = ('<geom name="floor" type="plane" size="0 0 0.05" material="grid" '
                 'contype="1" conaffinity="1"/>')
    fixture = ""
    if fixture_geoms:
        fixture = f'<body name="fixture" mocap="true">{"".join(fixture_geoms)}</body>'
    return f"""<mujoco model="equigym_{task.name}_{shape.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic"/>
  <size memory="1M"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default><geom friction="{FRICTION} 0.005 0.0001" condim="3"/></default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".2 .3 .4" rgb2=".1 .15 .2"
             width="512" height="512"/>
    <texture name="sky" type="skybox" builtin="gradient" rgb1=".4 .6 .8" rgb2="0 0 0"
             width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="8 8" reflectance="0.1"/>
    <material name="object" rgba="0.85 0.45 0.1 1"/>
    <material name="ghost" rgba="0.1 0.8 0.2 0.3"/>
    <material name="fixture" rgba="0.5 0.5 0.55 1"/>
    <material name="gripper" rgba="0.2 0.4 0.9 1"/>
    {"".join(assets)}
  </asset>
  <worldbody>
    <light pos="0 0 4" dir="0 0 -1" directional="true"/>
    <light pos="0 -3 3" dir="0 1 -1" diffuse=".4 .4 .4"/>
    <site name="world_frame" pos="0 0 0" size="0.001"/>
    {floor}
    {fixture}
    <body name="target" mocap="true">{"".join(ghost_geoms)}</body>
    <body name="object">
      {"".join(joints)}
      {"".join(obj_geoms)}
      {"".join(grippers)}
    </body>
    {pusher}
  </worldbody>
  <actuator>{"".join(actuators)}</actuator>
</mujoco>
"""


__all__ = ["FRAME_SKIP", "INSERT_DEPTH", "TASKS", "TIMESTEP", "Task", "build_xml"]

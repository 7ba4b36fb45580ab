"""Procedural 3D morphologies: one description per family, every variant generated from it.

Each family (hopper, walker, humanoid, cheetah after 3D-SGRL, plus equigym's own ``ant``) is a tree
of capsule limbs hanging off a free-floating torso. Every limb has three hinges about its local
x, y and z axes (left limbs use -x and -z so that mirrored limbs mirror their actions). A variant is
the full body with whole limb subtrees removed; its name follows 3D-SGRL,
``<family>_<nodes>_<removed parts>``, e.g. ``walker_3_left_knee_right_knee`` is the 7-node walker
without either shin (and the feet below them).

Nothing here is a copied asset file: :func:`build_xml` writes the MJCF for any variant, and
:func:`spawn_height` places it so that its lowest point just clears the floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

Vec3 = tuple[float, float, float]

LIMB_TYPES: tuple[str, ...] = (
    "torso",
    "thigh",
    "shin",
    "foot",
    "upper_arm",
    "lower_arm",
    "tail",
    "other",
)
"""Limb types used for the one-hot node feature; names are matched as substrings of body names."""

SPAWN_CLEARANCE = 0.005  # m, gap between the lowest geom and the floor at spawn
_RIGHT_AXES: tuple[Vec3, Vec3, Vec3] = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0))
_LEFT_AXES: tuple[Vec3, Vec3, Vec3] = ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))


@dataclass(frozen=True)
class Geom:
    """A capsule (two end points) or a sphere (one point) in its body's frame, metres."""

    start: Vec3
    end: Vec3 | None
    radius: float


@dataclass(frozen=True)
class Limb:
    """One body below the torso.

    Attributes:
        name: Body name; its limb type is the first of :data:`LIMB_TYPES` found in it.
        parent: Parent body name (``"torso"`` for limbs attached to the root).
        pos: Body origin in the parent's frame, m.
        geoms: Collision/visual geoms in the body frame.
        ranges: Hinge ranges in degrees for the x, y and z hinges.
        gear: Motor gear (N·m per unit control) for the x, y, z hinges; 0 means the hinge is
            passive (no motor, its action slot is masked).
        stiffness: Passive joint stiffness of the three hinges, N·m/rad (towards angle 0).
        damping: Passive joint damping, N·m·s/rad (``None``: the default 0.5).
    """

    name: str
    parent: str
    pos: Vec3
    geoms: tuple[Geom, ...]
    ranges: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    gear: tuple[float, float, float]
    stiffness: float = 0.0
    damping: float | None = None

    @property
    def axes(self) -> tuple[Vec3, Vec3, Vec3]:
        """Hinge axes in the body frame (mirrored for left limbs)."""
        return _LEFT_AXES if "left" in self.name.split("_") else _RIGHT_AXES


@dataclass(frozen=True)
class Family:
    """A morphology family: the full body, its variants and its physics and task defaults.

    Attributes:
        name: Family name, the prefix of every variant name.
        torso: Geoms of the root body.
        limbs: Every limb of the full body, parents before children.
        variants: Variant suffix (after ``<family>_<nodes>_``) → names of removed limbs; each
            removed limb takes its whole subtree with it.
        test: Variant names held out for zero-shot evaluation.
        timestep: Physics timestep, s.
        integrator: MuJoCo integrator name.
        frame_skip: Physics steps per environment step.
        healthy_z: Healthy torso height range as fractions of the variant's spawn height.
        max_tilt: Largest healthy angle (rad) between the torso's up axis and the vertical.
        reset_noise: Half-width of the uniform noise added to qpos and qvel at reset.
        alive_bonus: Reward per step while healthy.
        ctrl_cost_weight: Weight of the squared-control penalty.
    """

    name: str
    torso: tuple[Geom, ...]
    limbs: tuple[Limb, ...]
    variants: dict[str, tuple[str, ...]]
    test: tuple[str, ...]
    timestep: float
    integrator: str
    frame_skip: int
    healthy_z: tuple[float, float]
    max_tilt: float
    reset_noise: float
    alive_bonus: float
    ctrl_cost_weight: float = 1e-3
    torso_extra: tuple[str, ...] = field(default=())

    def limbs_of(self, variant: str) -> tuple[Limb, ...]:
        """Limbs kept in ``variant`` (full name or suffix), parents before children."""
        removed = set(self.variants[_suffix(self.name, variant)])
        kept: list[Limb] = []
        names = {"torso"}
        for limb in self.limbs:
            if limb.name in removed or limb.parent not in names:
                continue
            kept.append(limb)
            names.add(limb.name)
        return tuple(kept)

    @property
    def morphologies(self) -> tuple[str, ...]:
        """Full variant names, e.g. ``walker_7_full``."""
        return tuple(
            f"{self.name}_{1 + len(self.limbs_of(suffix))}_{suffix}" for suffix in self.variants
        )


def _suffix(family: str, variant: str) -> str:
    """Strip ``<family>_<nodes>_`` from a full variant name; a bare suffix passes through."""
    parts = variant.split("_", 2)
    if len(parts) == 3 and parts[0] == family and parts[1].isdigit():
        return parts[2]
    return variant


def _cap(end: Vec3, radius: float, start: Vec3 = (0.0, 0.0, 0.0)) -> Geom:
    return Geom(start, end, radius)


def _mirror(limbs: list[Limb]) -> list[Limb]:
    """Right limbs plus their mirror images through the xz-plane (``right`` → ``left``)."""
    out = []
    for limb in limbs:
        out.append(limb)
        flip = lambda v: (v[0], -v[1], v[2])  # noqa: E731
        out.append(
            Limb(
                name=limb.name.replace("right", "left"),
                parent=limb.parent.replace("right", "left"),
                pos=flip(limb.pos),
                geoms=tuple(
                    Geom(flip(g.start), None if g.end is None else flip(g.end), g.radius)
                    for g in limb.geoms
                ),
                ranges=limb.ranges,
                gear=limb.gear,
                stiffness=limb.stiffness,
                damping=limb.damping,
            )
        )
    return sorted(out, key=lambda x: _tree_order(out, x))


def _tree_order(limbs: list[Limb], limb: Limb) -> tuple[int, ...]:
    """Sort key that keeps parents before children and the right side first."""
    chain = []
    by_name = {x.name: x for x in limbs}
    while limb is not None:
        chain.append(limbs.index(limb))
        limb = by_name.get(limb.parent)
    return tuple(reversed(chain))


_SMALL = (-1.0, 1.0)  # deg, nearly locked hinge (3D-SGRL keeps ±1° on knees and most feet)

HOPPER = Family(
    name="hopper",
    torso=(_cap((0.0, 0.0, -0.2), 0.05, (0.0, 0.0, 0.2)),),
    limbs=(
        Limb("thigh", "torso", (0, 0, -0.2), (_cap((0, 0, -0.45), 0.05),),
             ((-20, 20), (-150, 0), (-20, 20)), (100, 200, 100)),
        Limb("shin", "thigh", (0, 0, -0.45), (_cap((0, 0, -0.25), 0.04),),
             (_SMALL, (-150, 0), _SMALL), (50, 200, 50)),
        Limb("lower_shin", "shin", (0, 0, -0.25), (_cap((0, 0, -0.25), 0.04),),
             (_SMALL, (-150, 0), _SMALL), (50, 200, 50)),
        Limb("foot", "lower_shin", (0, 0, -0.25), (_cap((0.26, 0, 0), 0.06, (-0.13, 0, 0)),),
             ((-20, 20), (-45, 45), (-20, 20)), (50, 200, 50)),
    ),
    # Hopper names say which segment is the lowest one kept (3D-SGRL's naming is loose here).
    variants={"full": (), "lower_shin": ("foot",), "shin": ("lower_shin",)},
    test=(),
    timestep=0.002,
    integrator="RK4",
    frame_skip=4,
    healthy_z=(0.55, 2.0),
    max_tilt=1.0,
    reset_noise=0.005,
    alive_bonus=1.0,
)

WALKER = Family(
    name="walker",
    torso=(_cap((0.0, 0.0, -0.2), 0.05, (0.0, 0.0, 0.2)),),
    limbs=tuple(
        _mirror(
            [
                Limb("right_thigh", "torso", (0, -0.1, -0.2), (_cap((0, 0, -0.45), 0.05),),
                     ((-30, 30), (-150, 0), (-30, 30)), (100, 100, 100)),
                Limb("right_shin", "right_thigh", (0, 0, -0.45), (_cap((0, 0, -0.5), 0.04),),
                     (_SMALL, (-150, 0), _SMALL), (0, 100, 0)),
                Limb("right_foot", "right_shin", (0, 0, -0.5),
                     (_cap((0.15, 0, 0), 0.06, (-0.05, 0, 0)),),
                     ((-20, 20), (-45, 45), _SMALL), (50, 100, 0)),
            ]
        )
    ),
    variants={
        "full": (),
        "right_foot": ("right_foot",),
        "left_knee": ("left_shin",),
        "foot": ("right_foot", "left_foot"),
        "right_knee_left_foot": ("right_shin", "left_foot"),
        "left_knee_right_knee": ("left_shin", "right_shin"),
        "left_leg_right_foot": ("left_thigh", "right_foot"),
        "right_leg_left_knee": ("right_thigh", "left_shin"),
    },
    test=("walker_3_left_knee_right_knee", "walker_6_right_foot"),
    timestep=0.002,
    integrator="RK4",
    frame_skip=4,
    healthy_z=(0.6, 1.7),
    max_tilt=1.0,
    reset_noise=0.005,
    alive_bonus=1.0,
)

HUMANOID = Family(
    name="humanoid",
    # Chest, head and the waist merged into one rigid torso, as in 3D-SGRL.
    torso=(
        _cap((0, 0.07, 0), 0.07, (0, -0.07, 0)),
        Geom((0, 0, 0.19), None, 0.09),
        _cap((-0.01, 0.06, -0.12), 0.06, (-0.01, -0.06, -0.12)),
        _cap((-0.02, 0.07, -0.26), 0.06, (-0.02, -0.07, -0.26)),
        _cap((-0.02, 0.07, -0.425), 0.09, (-0.02, -0.07, -0.425)),
    ),
    limbs=tuple(
        _mirror(
            [
                Limb("right_thigh", "torso", (0, -0.1, -0.465), (_cap((0, 0.01, -0.34), 0.06),),
                     ((-25, 5), (-110, 20), (-60, 35)), (60, 120, 60)),
                Limb("right_shin", "right_thigh", (0, 0.01, -0.403),
                     (_cap((0, 0, -0.3), 0.049), Geom((0, 0, -0.35), None, 0.075)),
                     (_SMALL, (-160, -2), _SMALL), (0, 80, 0)),
                Limb("right_upper_arm", "torso", (0, -0.17, 0.06),
                     (_cap((0.16, -0.16, -0.16), 0.04),),
                     ((-85, 60), (-85, 60), _SMALL), (25, 25, 0)),
                Limb("right_lower_arm", "right_upper_arm", (0.18, -0.18, -0.18),
                     (_cap((0.17, 0.17, 0.17), 0.031, (0.01, 0.01, 0.01)),
                      Geom((0.18, 0.18, 0.18), None, 0.04)),
                     (_SMALL, (-90, 50), _SMALL), (0, 25, 0)),
            ]
        )
    ),
    variants={
        "full": (),
        "left_knee": ("left_shin",),
        "right_knee": ("right_shin",),
        "left_arm": ("left_upper_arm",),
        "right_arm": ("right_upper_arm",),
        "lower_arms": ("left_lower_arm", "right_lower_arm"),
        "left_leg": ("left_thigh",),
        "right_leg": ("right_thigh",),
    },
    test=("humanoid_7_left_leg", "humanoid_8_right_knee"),
    timestep=0.002,
    integrator="RK4",
    frame_skip=4,
    healthy_z=(0.65, 1.5),
    max_tilt=1.0,
    reset_noise=0.005,
    alive_bonus=1.0,
)


# Sprung, damped cheetah legs (as in the HalfCheetah lineage): without springs the legs fold
# under the body's weight at zero action. N·m/rad and N·m·s/rad for thigh, shin, foot.
STIFF = (180.0, 120.0, 60.0)
DAMP = (4.5, 3.0, 1.5)


def _leg(side: str, end: str, x: float, sign: float) -> list[Limb]:
    """Three-segment cheetah leg; ``end`` is ``b``(ack) or ``f``(ront), ``sign`` the knee bend."""
    p = f"{side}_{end}"
    return [
        Limb(f"{p}thigh", "torso", (x, -0.12, 0), (_cap((0.1 * sign, 0, -0.25), 0.046),),
             ((-20, 20), (-60, 30), (-20, 20)), (60, 120, 60), STIFF[0], DAMP[0]),
        Limb(f"{p}shin", f"{p}thigh", (0.1 * sign, 0, -0.25),
             (_cap((-0.12 * sign, 0, -0.22), 0.046),), (_SMALL, (-45, 45), _SMALL), (0, 90, 0),
             STIFF[1], DAMP[1]),
        Limb(f"{p}foot", f"{p}shin", (-0.12 * sign, 0, -0.22),
             (_cap((0.05 * sign, 0, -0.13), 0.046),), ((-20, 20), (-30, 45), _SMALL), (30, 60, 0),
             STIFF[2], DAMP[2]),
    ]


CHEETAH = Family(
    name="cheetah",
    torso=(_cap((0.5, 0, 0), 0.046, (-0.5, 0, 0)), _cap((0.7, 0, 0.12), 0.046, (0.5, 0, 0))),
    limbs=tuple(
        [Limb("upper_tail", "torso", (-0.5, 0, 0), (_cap((-0.3, 0, 0.1), 0.03),),
              (_SMALL, (-30, 30), (-30, 30)), (0, 20, 20))]
        + _mirror(_leg("right", "b", -0.5, 1.0) + _leg("right", "f", 0.5, -1.0))
    ),
    variants={
        "full": (),
        "tail": ("upper_tail",),
        "rightffoot": ("right_ffoot",),
        "rightbknee": ("right_bshin",),
        "tail_leftbfoot": ("upper_tail", "left_bfoot"),
        "tail_leftffoot": ("upper_tail", "left_ffoot"),
        "leftfleg": ("left_fthigh",),
        "tail_rightfknee": ("upper_tail", "right_fshin"),
        # "kneen" is 3D-SGRL's spelling; kept so names match the reference.
        "leftbkneen_rightffoot": ("left_bshin", "right_ffoot"),
        "tail_leftbleg": ("upper_tail", "left_bthigh"),
    },
    test=("cheetah_11_leftbkneen_rightffoot", "cheetah_12_tail_leftffoot"),
    timestep=0.01,
    integrator="Euler",
    frame_skip=4,
    healthy_z=(0.35, 2.0),
    max_tilt=1.35,
    reset_noise=0.1,
    alive_bonus=0.0,
)

ANT = Family(
    # equigym's own family: a 3D ant-like quadruped with diagonal two-segment legs.
    name="ant",
    torso=(Geom((0, 0, 0), None, 0.25),),
    limbs=tuple(
        limb
        for fx, fy, tag in ((1, -1, "front_right"), (1, 1, "front_left"),
                            (-1, -1, "back_right"), (-1, 1, "back_left"))
        for limb in (
            Limb(f"{tag}_thigh", "torso", (0.2 * fx, 0.2 * fy, 0),
                 (_cap((0.2 * fx, 0.2 * fy, 0), 0.08),),
                 ((-30, 30), (-30, 30), (-40, 40)), (60, 60, 60)),
            Limb(f"{tag}_shin", f"{tag}_thigh", (0.2 * fx, 0.2 * fy, 0),
                 (_cap((0.3 * fx, 0.3 * fy, -0.35), 0.08),),
                 ((-30, 30), (-30, 30), _SMALL), (60, 60, 0)),
        )
    ),
    variants={
        "full": (),
        "front_left_shin": ("front_left_shin",),
        "back_right_shin": ("back_right_shin",),
        "front_left_leg": ("front_left_thigh",),
        "back_right_leg": ("back_right_thigh",),
        "left_shins": ("front_left_shin", "back_left_shin"),
    },
    test=("ant_8_back_right_shin", "ant_7_front_left_leg"),
    timestep=0.005,
    integrator="RK4",
    frame_skip=4,
    healthy_z=(0.3, 3.0),
    max_tilt=1.4,
    reset_noise=0.05,
    alive_bonus=1.0,
)

FAMILIES: dict[str, Family] = {f.name: f for f in (HOPPER, WALKER, HUMANOID, CHEETAH, ANT)}
"""Every built-in family by name."""


def parse_morphology(name: str) -> tuple[Family, str]:
    """Split a morphology name into its family and variant suffix.

    Raises:
        ValueError: If the name is not a built-in morphology; the message lists the valid names.
    """
    family = FAMILIES.get(name.split("_", 1)[0])
    if family is not None:
        suffix = _suffix(family.name, name)
        if suffix in family.variants and f"{family.name}_" in name:
            full = f"{family.name}_{1 + len(family.limbs_of(suffix))}_{suffix}"
            if name == full:
                return family, suffix
    valid = ", ".join(m for f in FAMILIES.values() for m in f.morphologies)
    raise ValueError(
        f"Unknown morphology {name!r}. Valid morphologies: {valid}. "
        "To use your own robot, pass xml_file=PATH instead."
    )


def _fmt(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.ravel(v))


def _geom_xml(g: Geom, name: str) -> str:
    if g.end is None:
        return f'<geom name="{name}" type="sphere" pos="{_fmt(g.start)}" size="{g.radius:.6g}"/>'
    return (
        f'<geom name="{name}" type="capsule" fromto="{_fmt(g.start + g.end)}" '
        f'size="{g.radius:.6g}"/>'
    )


def _limb_xml(limb: Limb, children: dict[str, list[Limb]], indent: str) -> list[str]:
    lines = [f'{indent}<body name="{limb.name}" pos="{_fmt(limb.pos)}">']
    passive = f' stiffness="{limb.stiffness:.6g}"' if limb.stiffness else ""
    if limb.damping is not None:
        passive += f' damping="{limb.damping:.6g}"'
    for axis_name, axis, rng in zip("xyz", limb.axes, limb.ranges, strict=True):
        lines.append(
            f'{indent}  <joint name="{limb.name}_joint_{axis_name}" axis="{_fmt(axis)}" '
            f'range="{_fmt(rng)}"{passive}/>'
        )
    for i, g in enumerate(limb.geoms):
        lines.append(f"{indent}  {_geom_xml(g, f'{limb.name}_geom{i}')}")
    for child in children.get(limb.name, []):
        lines += _limb_xml(child, children, indent + "  ")
    lines.append(f"{indent}</body>")
    return lines


def build_xml(morphology: str, torso_z: float | None = None) -> str:
    """MJCF text of a built-in morphology.

    Args:
        morphology: Full variant name, e.g. ``"humanoid_9_full"``.
        torso_z: Spawn height of the torso, m; ``None`` places the lowest geom just above the floor.

    Returns:
        The MJCF document as a string (compiles with ``mujoco.MjModel.from_xml_string``).
    """
    family, suffix = parse_morphology(morphology)
    if torso_z is None:
        torso_z = spawn_height(morphology)
    limbs = family.limbs_of(suffix)
    children: dict[str, list[Limb]] = {}
    for limb in limbs:
        children.setdefault(limb.parent, []).append(limb)
    body = [f'    <body name="torso" pos="0 0 {torso_z:.6g}">']
    body.append(
        '      <camera name="track" mode="trackcom" pos="0 -4 0.6" xyaxes="1 0 0 0 0.15 1"/>'
    )
    body.append('      <freejoint name="root"/>')
    body += [f"      {_geom_xml(g, f'torso_geom{i}')}" for i, g in enumerate(family.torso)]
    for child in children.get("torso", []):
        body += _limb_xml(child, children, "      ")
    body.append("    </body>")
    motors = [
        f'    <motor name="{limb.name}_motor_{a}" joint="{limb.name}_joint_{a}" '
        f'gear="{gear:.6g}"/>'
        for limb in limbs
        for a, gear in zip("xyz", limb.gear, strict=True)
        if gear != 0
    ]
    return "\n".join(
        [
            f'<mujoco model="{morphology}">',
            '  <compiler angle="degree" autolimits="true"/>',
            # Elliptic cones: pyramidal cones make friction depend on the sliding direction and
            # would break the symmetry about gravity that the policies rely on.
            f'  <option timestep="{family.timestep}" integrator="{family.integrator}" '
            'cone="elliptic"/>',
            "  <default>",
            '    <joint type="hinge" armature="0.02" damping="0.5" limited="true"/>',
            '    <geom condim="3" friction="0.9 0.005 0.0001" rgba="0.8 0.6 0.4 1"/>',
            '    <motor ctrlrange="-1 1" ctrllimited="true"/>',
            "  </default>",
            "  <asset>",
            '    <texture name="grid" type="2d" builtin="checker" rgb1=".1 .2 .3" rgb2=".2 .3 .4"'
            ' width="300" height="300"/>',
            '    <material name="grid" texture="grid" texrepeat="1 1" texuniform="true"/>',
            "  </asset>",
            "  <worldbody>",
            '    <light pos="0 0 6" dir="0 0 -1" directional="true"/>',
            '    <geom name="floor" type="plane" size="0 0 0.05" material="grid"/>',
            *body,
            "  </worldbody>",
            "  <actuator>",
            *motors,
            "  </actuator>",
            "</mujoco>",
        ]
    )


@cache
def spawn_height(morphology: str) -> float:
    """Torso height (m) at which the variant's lowest geom clears the floor by 5 mm."""
    import mujoco

    model = mujoco.MjModel.from_xml_string(build_xml(morphology, torso_z=0.0))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return float(SPAWN_CLEARANCE - lowest_point(model, data))


def lowest_point(model, data, geoms: np.ndarray | None = None) -> float:
    """Lowest z (m) over ``geoms`` (default: every geom of a non-world body).

    Exact for spheres, capsules and boxes, the bounding sphere for other geom types.
    """
    import mujoco

    ids = np.flatnonzero(model.geom_bodyid > 0) if geoms is None else geoms
    z = data.geom_xpos[ids, 2]
    size = model.geom_size[ids]
    rz = data.geom_xmat[ids].reshape(-1, 3, 3)[:, 2, :]  # z-row of each geom's rotation
    kind = model.geom_type[ids]
    low = z - model.geom_rbound[ids]  # conservative default: bounding sphere
    sph = kind == mujoco.mjtGeom.mjGEOM_SPHERE
    low[sph] = z[sph] - size[sph, 0]
    cap = kind == mujoco.mjtGeom.mjGEOM_CAPSULE
    low[cap] = z[cap] - np.abs(rz[cap, 2]) * size[cap, 1] - size[cap, 0]
    box = kind == mujoco.mjtGeom.mjGEOM_BOX
    low[box] = z[box] - (np.abs(rz[box]) * size[box]).sum(axis=1)
    return float(low.min()) if len(low) else 0.0

"""Evaluation conditions of a trained run: what it trained on, and what it never saw.

A condition is a named set of env constructor arguments (and, for locomotion, morphologies). For
each env family equigym knows the training conditions (what ``train.py`` used: the env's
defaults, or ``--morphologies``) and the **held-out** ones of its zero-shot splits:

========================  ================================  ====================================
env                       ``train``                         ``held_out``
========================  ================================  ====================================
locomotion                the run's morphologies            the family's test morphologies
Sliding, Pushing,         ``shape="train"`` (8 shapes)      ``shape="test"`` (6 unseen shapes)
Insertion(TwoAgents)
RopeShaping               ``target="W"``                    ``target=["U", "S", "arc"]``
ClothHanging              ``hole="train"`` (holes 0-19)     ``hole="test"`` (holes 20-39)
RopeClosing               the task (no variations)          none
========================  ================================  ====================================

Single items are conditions too: ``morphology:<name>``, ``xml:<path>`` (any MJCF robot, padded
to the run's node count), ``shape:<name>``, ``target:<name>``, ``hole:<index>``. Every condition
keeps the run's observation layout (its graph spec), so one trained network runs in all of
them. This module builds no networks (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from equigym.envs.registration import DEFORMABLE_IDS, LOCOMOTION_IDS, MANIPULATION_IDS

SPLITS_NAMES = ("train", "held_out")
"""The two groups every condition belongs to; the report's ratio is held_out ÷ train."""


@dataclass(frozen=True)
class Condition:
    """One evaluation condition.

    Episode ``i`` of a condition runs ``gym.make(env_id, **env_kwargs)`` with
    ``morphology=morphologies[i % len(morphologies)]`` when ``morphologies`` is set.
    """

    name: str
    """Name in tables and file names (``train``, ``held_out``, ``shape:A``...)."""
    split: str
    """``"train"`` or ``"held_out"``."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments of the env."""
    morphologies: tuple[str, ...] = ()
    """Locomotion: the morphologies, one per episode in turn."""
    description: str = ""
    """One line for the report."""

    def episode_kwargs(self, episode: int) -> dict[str, Any]:
        """Constructor arguments of episode ``episode``."""
        kwargs = dict(self.env_kwargs)
        if self.morphologies:
            kwargs["morphology"] = self.morphologies[episode % len(self.morphologies)]
        return kwargs


def family_of(env_id: str) -> str:
    """``"locomotion"``, ``"rigid"`` or ``"deformable"`` (a ``ValueError`` for other ids)."""
    if env_id in LOCOMOTION_IDS or env_id == "equigym/Locomotion3D-v0":
        return "locomotion"
    if env_id in MANIPULATION_IDS:
        return "rigid"
    if env_id in DEFORMABLE_IDS:
        return "deformable"
    raise ValueError(f"{env_id!r} is not an equigym env id with evaluation conditions")


def _xml_kwargs(path: str | Path) -> dict[str, Any]:
    """Env arguments of a robot file (``morphology=None`` overrides the id's built-in robot)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"No robot file {str(path)!r} (--xml / xml:<path>)")
    return {"xml_file": str(path), "morphology": None}


def run_conditions(
    env_id: str,
    trained_morphologies: Sequence[str] | None,
    max_nodes: int | None = None,
    xml: Sequence[str | Path] = (),
) -> dict[str, Condition]:
    """The built-in conditions of a run (``train``, ``held_out`` where the task has one).

    Args:
        env_id: The run's env id.
        trained_morphologies: Locomotion: the morphologies it trained on (``None``: the id's
            own robot).
        max_nodes: Locomotion: the run's padded node count (every condition pads to it).
        xml: Extra robot files, each a held-out condition ``xml:<path>``.

    Returns:
        Name → condition, training conditions first.
    """
    family = family_of(env_id)
    out: dict[str, Condition] = {}
    if family == "locomotion":
        from equigym.envs.locomotion import SPLITS

        trained = tuple(trained_morphologies or ())
        if not trained:
            if env_id not in LOCOMOTION_IDS:
                raise ValueError("a Locomotion3D-v0 run must name its morphologies")
            trained = (LOCOMOTION_IDS[env_id],)
        pad = {"max_nodes": max_nodes} if max_nodes else {}
        out["train"] = Condition("train", "train", pad, trained,
                                 f"trained morphologies: {', '.join(trained)}")  # fmt: skip
        family_name = trained[0].split("_", 1)[0]
        unseen = tuple(m for m in SPLITS.get(family_name, {}).get("test", []) if m not in trained)
        if unseen:
            out["held_out"] = Condition("held_out", "held_out", pad, unseen,
                                        f"unseen morphologies: {', '.join(unseen)}")  # fmt: skip
        for path in xml:
            name = f"xml:{Path(path).name}"
            out[name] = Condition(name, "held_out", {**pad, **_xml_kwargs(path)}, (),
                                  f"robot from {path}")  # fmt: skip
        return out
    if xml:
        raise ValueError("--xml adds robots: it applies to locomotion runs only")
    if family == "rigid":
        from equigym.envs.manipulation.shapes import TEST_SHAPES, TRAIN_SHAPES

        out["train"] = Condition("train", "train", {"shape": "train"}, (),
                                 f"training shapes: {', '.join(TRAIN_SHAPES)}")  # fmt: skip
        out["held_out"] = Condition("held_out", "held_out", {"shape": "test"}, (),
                                    f"unseen shapes: {', '.join(TEST_SHAPES)}")  # fmt: skip
    elif DEFORMABLE_IDS[env_id] == "rope_shaping":
        out["train"] = Condition("train", "train", {"target": "W"}, (), "target curve W")
        out["held_out"] = Condition("held_out", "held_out", {"target": ["U", "S", "arc"]}, (),
                                    "unseen target curves U, S, arc")  # fmt: skip
    elif DEFORMABLE_IDS[env_id] == "cloth_hanging":
        out["train"] = Condition("train", "train", {"hole": "train"}, (), "training holes 0-19")
        out["held_out"] = Condition("held_out", "held_out", {"hole": "test"}, (),
                                    "unseen holes 20-39")  # fmt: skip
    else:
        out["train"] = Condition("train", "train", {}, (), "the task (no held-out variations)")
    return out


def item_condition(
    env_id: str, name: str, trained: Condition, builtin_names: Sequence[str] = ("train",)
) -> Condition:
    """A single-item condition such as ``shape:A``, ``morphology:walker_6_right_foot``.

    ``trained`` is the run's ``train`` condition (for padding and splits); ``builtin_names``
    are listed in the error message for an unknown name.

    Raises:
        ValueError: For an unknown item kind or value (the message lists the valid ones).
    """
    kind, _, value = name.partition(":")
    family = family_of(env_id)
    valid = {
        "locomotion": ("morphology", "xml"),
        "rigid": ("shape",),
        "deformable": {"rope_shaping": ("target",), "cloth_hanging": ("hole",)}.get(
            DEFORMABLE_IDS.get(env_id, ""), ()
        ),
    }[family]
    if kind not in valid or not value:
        raise ValueError(
            f"Unknown condition {name!r} for {env_id}; use "
            + ", ".join([*builtin_names, *(f"{k}:<name>" for k in valid)])
        )
    base = {k: v for k, v in trained.env_kwargs.items() if k == "max_nodes"}
    if kind == "morphology":
        from equigym.envs.locomotion import parse_morphology

        parse_morphology(value)  # raises with the valid names
        split = "train" if value in trained.morphologies else "held_out"
        return Condition(name, split, base, (value,), f"morphology {value}")
    if kind == "xml":
        kwargs = {**base, **_xml_kwargs(value)}
        return Condition(name, "held_out", kwargs, (), f"robot from {value}")
    if kind == "shape":
        from equigym.envs.manipulation.shapes import SHAPE_NAMES, TRAIN_SHAPES

        if value not in SHAPE_NAMES:
            raise ValueError(f"Unknown shape {value!r}; choose one of {', '.join(SHAPE_NAMES)}")
        split = "train" if value in TRAIN_SHAPES else "held_out"
        return Condition(name, split, {"shape": value}, (), f"shape {value}")
    if kind == "target":
        from equigym.envs.manipulation.deformable import ROPE_TARGETS

        if value not in ROPE_TARGETS:
            raise ValueError(f"Unknown target {value!r}; choose one of {', '.join(ROPE_TARGETS)}")
        split = "train" if value == "W" else "held_out"
        return Condition(name, split, {"target": value}, (), f"target curve {value}")
    from equigym.envs.manipulation.deformable import HOLE_SPLITS

    try:
        index = int(value)
    except ValueError:
        raise ValueError(f"hole:<index> needs an integer index, got {value!r}") from None
    split = next((s for s, idx in HOLE_SPLITS.items() if index in idx), None)
    if split not in ("train", "test"):
        raise ValueError(f"Unknown hole {index}; holes are numbered 0-39")
    return Condition(name, "train" if split == "train" else "held_out", {"hole": index}, (),
                     f"hole {index}")  # fmt: skip


def select_conditions(
    env_id: str, builtin: dict[str, Condition], names: Sequence[str] | None
) -> dict[str, Condition]:
    """The conditions called ``names`` (default: every built-in one), validated.

    Raises:
        ValueError: For an unknown condition name.
    """
    if not names:
        return dict(builtin)
    out = {}
    for name in names:
        out[name] = builtin[name] if name in builtin else item_condition(
            env_id, name, builtin["train"], list(builtin)
        )
    return out


__all__ = [
    "SPLITS_NAMES",
    "Condition",
    "family_of",
    "item_condition",
    "run_conditions",
    "select_conditions",
]

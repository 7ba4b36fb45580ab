"""3D locomotion suite: built-in morphology families, their splits, and the graph env.

``SPLITS`` maps each family to its training and held-out (zero-shot) morphologies::

    from equigym.envs.locomotion import SPLITS
    SPLITS["walker"]["test"]  # ['walker_3_left_knee_right_knee', 'walker_6_right_foot']
"""

from __future__ import annotations

from equigym.envs.locomotion.locomotion_v0 import Locomotion3DEnv
from equigym.envs.locomotion.morphologies import FAMILIES, build_xml, parse_morphology

MORPHOLOGIES: tuple[str, ...] = tuple(m for f in FAMILIES.values() for m in f.morphologies)
"""Every built-in morphology name (3D-SGRL's 29 plus equigym's ant family)."""

SPLITS: dict[str, dict[str, list[str]]] = {
    name: {
        "train": [m for m in fam.morphologies if m not in fam.test],
        "test": list(fam.test),
    }
    for name, fam in FAMILIES.items()
}
"""Family → {"train": [...], "test": [...]}; held out as in 3D-SGRL (hopper has none)."""


def resolve_morphologies(selection: str) -> list[str]:
    """Expand ``"walker"``, ``"walker:train"``, ``"walker:test"`` or ``"a,b,c"`` into names.

    Raises:
        ValueError: For an unknown family, split or morphology name.
    """
    out: list[str] = []
    for part in filter(None, (p.strip() for p in selection.split(","))):
        family, _, split = part.partition(":")
        if family in SPLITS:
            if split and split not in ("train", "test", "all"):
                raise ValueError(f"Unknown split {split!r} in {part!r}; use train, test or all.")
            if split in ("", "all"):
                out += SPLITS[family]["train"] + SPLITS[family]["test"]
            else:
                out += SPLITS[family][split]
        else:
            parse_morphology(part)  # raises with the list of valid names
            out.append(part)
    if not out:
        raise ValueError(f"No morphology selected by {selection!r}.")
    return out


def max_nodes(morphologies: list[str]) -> int:
    """Largest node count among built-in morphologies (the padding for a multi-morphology batch).

    Raises:
        ValueError: For an unknown morphology name.
    """
    counts = []
    for name in morphologies:
        family, suffix = parse_morphology(name)
        counts.append(1 + len(family.limbs_of(suffix)))  # torso + kept limbs
    return max(counts)


__all__ = [
    "FAMILIES",
    "Locomotion3DEnv",
    "MORPHOLOGIES",
    "SPLITS",
    "build_xml",
    "max_nodes",
    "parse_morphology",
    "resolve_morphologies",
]

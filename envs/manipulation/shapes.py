"""Extruded 2-D outline shapes for the rigid manipulation tasks, and their hole fixtures.

A :class:`Shape` is a simple polygon (counter-clockwise, metres, centred on its area centroid)
extruded along the object's local z axis. MuJoCo collides a mesh as its convex hull (a star would
collide like a pentagon), so the solid and the fixture around its hole are both built from convex
pieces: a vertical-slab (trapezoidal) decomposition of the polygon, and of the square plate minus
the polygon grown by :data:`CLEARANCE`, with adjacent pieces merged while the union stays convex.
Graph nodes are the outline vertices themselves.

Built-in outlines follow the low-poly "kitting" shapes of the HEPi benchmark (plus, pentagon, star,
T, diamond, heart, hexagon, triangle, A, E, L, M, V, rectangle), drawn here on a grid of
:data:`UNIT` metres. :data:`TRAIN_SHAPES` is HEPi's insertion set; :data:`TEST_SHAPES` holds out the
rest for zero-shot evaluation. Any user polygon goes through :func:`make_shape`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

UNIT = 0.0125  # m, grid unit of the built-in outlines (HEPi's mesh scale)
HEIGHT = 0.04  # m, extrusion height of every object
CLEARANCE = 0.003  # m, gap between an outline and its hole, measured along each edge's normal
MIN_EDGE = 0.004  # m, shortest allowed outline edge
MIN_WIDTH = 0.02  # m, smallest allowed extent of a user polygon along x and y
MAX_EXTENT = 0.25  # m, largest allowed distance of a vertex from the centroid
MAX_SYMMETRY = 12  # highest rotational symmetry order looked for
SYMMETRY_TOL = 0.1 * CLEARANCE  # m: an outline this close to symmetric fits its hole either way
MIN_AREA = 0.1 * MIN_WIDTH**2  # m², smallest allowed outline area
PLATE_RIM = 0.03  # m, fixture plate beyond the pocket's extent
_EPS = 1e-9


@dataclass(frozen=True)
class Shape:
    """An extruded outline: the object, its graph nodes and the pieces of its hole fixture.

    Attributes:
        name: Shape name (``"custom"`` for user polygons).
        vertices: (N, 2) outline, counter-clockwise, metres, area centroid at the origin.
        pieces: Convex polygons (each (M, 2), counter-clockwise) whose union is the outline.
        hole_pieces: Convex polygons whose union is the fixture plate (a square of half-size
            :attr:`plate_half`) minus the outline grown by :data:`CLEARANCE`.
        symmetry: Rotational symmetry order ``n``: rotating by ``2 pi / n`` about the centroid maps
            the outline onto itself (1 for none).
        radius: Largest vertex distance from the centroid, m.
        plate_half: Half-size of the square fixture plate, m: the grown outline's extent (mitred
            tips of sharp vertices reach beyond ``radius + CLEARANCE``) plus a 3 cm rim.
        area: Outline area, m².
        interior_angles: (N,) interior angle at each vertex, rad (above pi at concave vertices).
    """

    name: str
    vertices: np.ndarray
    pieces: tuple[np.ndarray, ...]
    hole_pieces: tuple[np.ndarray, ...]
    symmetry: int
    radius: float
    area: float
    interior_angles: np.ndarray = field(repr=False)
    plate_half: float = 0.0

    @property
    def n_vertices(self) -> int:
        """Number of outline vertices (graph nodes)."""
        return len(self.vertices)

    def vertices_3d(self, z: float = 0.0) -> np.ndarray:
        """(N, 3) outline vertices in the object frame at height ``z`` (0: mid-plane)."""
        return np.column_stack([self.vertices, np.full(len(self.vertices), z)])


def _plate_half(pocket: np.ndarray) -> float:
    return float(np.abs(pocket).max()) + PLATE_RIM


# --- geometry helpers -------------------------------------------------------------------------
def signed_area(poly: np.ndarray) -> float:
    """Shoelace area (positive for counter-clockwise outlines), m²."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def area_centroid(poly: np.ndarray) -> np.ndarray:
    """Centroid of the polygon's area."""
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2.0
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6.0 * a)


def _segments_cross(p1, p2, p3, p4) -> bool:
    """Whether closed segments p1p2 and p3p4 intersect (touching counts)."""

    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return 0 if abs(v) < 1e-14 else (1 if v > 0 else -1)

    def on_seg(a, b, c):
        return (min(a[0], b[0]) - 1e-12 <= c[0] <= max(a[0], b[0]) + 1e-12
                and min(a[1], b[1]) - 1e-12 <= c[1] <= max(a[1], b[1]) + 1e-12)

    o1, o2, o3, o4 = orient(p1, p2, p3), orient(p1, p2, p4), orient(p3, p4, p1), orient(p3, p4, p2)
    if o1 != o2 and o3 != o4:
        return True
    return ((o1 == 0 and on_seg(p1, p2, p3)) or (o2 == 0 and on_seg(p1, p2, p4))
            or (o3 == 0 and on_seg(p3, p4, p1)) or (o4 == 0 and on_seg(p3, p4, p2)))


def self_intersection(poly: np.ndarray) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges that touch or cross (``None``: a simple polygon)."""
    n = len(poly)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if _segments_cross(poly[i], poly[(i + 1) % n], poly[j], poly[(j + 1) % n]):
                return i, j
    return None


def interior_angles(poly: np.ndarray) -> np.ndarray:
    """Interior angle at each vertex of a counter-clockwise polygon, rad."""
    prev = np.roll(poly, 1, axis=0) - poly
    nxt = np.roll(poly, -1, axis=0) - poly
    ang = np.arctan2(prev[:, 1], prev[:, 0]) - np.arctan2(nxt[:, 1], nxt[:, 0])
    return np.mod(ang, 2 * np.pi)


def offset_polygon(poly: np.ndarray, distance: float) -> np.ndarray:
    """Grow a counter-clockwise polygon by ``distance`` along every edge's outward normal.

    Each vertex moves to the intersection of its two shifted edges (a mitred offset), so every
    edge of the result lies exactly ``distance`` from the matching edge of ``poly``.
    """
    n = len(poly)
    out = np.empty_like(poly)
    for i in range(n):
        a, b, c = poly[i - 1], poly[i], poly[(i + 1) % n]
        d1, d2 = (b - a) / np.linalg.norm(b - a), (c - b) / np.linalg.norm(c - b)
        n1, n2 = np.array([d1[1], -d1[0]]), np.array([d2[1], -d2[0]])  # outward for CCW
        p1, p2 = a + distance * n1, b + distance * n2
        # Solve p1 + s d1 = p2 + u d2.
        mat = np.column_stack([d1, -d2])
        if abs(np.linalg.det(mat)) < 1e-12:  # collinear edges: shift the vertex along the normal
            out[i] = b + distance * n1
        else:
            s, _ = np.linalg.solve(mat, p2 - p1)
            out[i] = p1 + s * d1
    return out


def _is_convex(poly: np.ndarray) -> bool:
    """Whether a counter-clockwise polygon is convex (collinear vertices allowed)."""
    d = np.roll(poly, -1, axis=0) - poly
    cross = d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1)
    return bool(np.all(cross >= -1e-12))


def _clean(poly: np.ndarray) -> np.ndarray:
    """Drop repeated and collinear vertices of a convex polygon."""
    pts = [p for i, p in enumerate(poly) if np.linalg.norm(p - poly[i - 1]) > 1e-10]
    pts_a = np.array(pts)
    keep = []
    n = len(pts_a)
    for i in range(n):
        a, b, c = pts_a[i - 1], pts_a[i], pts_a[(i + 1) % n]
        cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])
        if abs(cross) > 1e-11:  # m²: rounding noise of collinear points is ~1e-14
            keep.append(b)
    return np.array(keep)


def _slab_pieces(outline: np.ndarray, inside: bool, half: float | None = None) -> list[np.ndarray]:
    """Trapezoids covering the inside of ``outline`` (or the square ``[-half, half]^2`` outside it).

    Vertical lines through every vertex cut the region into slabs; within a slab the outline's
    edges do not cross, so the region is a stack of trapezoids (each convex).
    """
    n = len(outline)
    xs = sorted(set(np.round(outline[:, 0], 12).tolist()))
    if not inside:
        xs = [-half, *xs, half]
    pieces = []
    for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
        if x1 - x0 < 1e-12:
            continue
        xm = 0.5 * (x0 + x1)
        ys = []  # (y at x0, y at x1, y at xm) of every edge spanning the slab
        for i in range(n):
            a, b = outline[i], outline[(i + 1) % n]
            lo, hi = min(a[0], b[0]), max(a[0], b[0])
            if lo <= xm <= hi and hi - lo > 1e-12:
                f = lambda x, a=a, b=b: a[1] + (b[1] - a[1]) * (x - a[0]) / (b[0] - a[0])  # noqa: E731
                ys.append((f(x0), f(x1), f(xm)))
        ys.sort(key=lambda t: t[2])
        if inside:
            bounds = [(ys[k], ys[k + 1]) for k in range(0, len(ys) - 1, 2)]
        else:
            floor, ceil = (-half, -half, -half), (half, half, half)
            stack = [floor, *ys, ceil]
            bounds = [(stack[k], stack[k + 1]) for k in range(0, len(stack) - 1, 2)]
        for low, high in bounds:
            quad = np.array([[x0, low[0]], [x1, low[1]], [x1, high[1]], [x0, high[0]]])
            quad = _clean(quad)
            if len(quad) >= 3 and signed_area(quad) > 1e-12:
                pieces.append(quad)
    return _merge_convex(pieces)


def _merge_convex(pieces: list[np.ndarray]) -> list[np.ndarray]:
    """Greedily merge pieces that share an edge while their union stays convex."""
    pieces = [p.copy() for p in pieces]
    merged = True
    while merged:
        merged = False
        for i in range(len(pieces)):
            for j in range(i + 1, len(pieces)):
                union = _union_if_convex(pieces[i], pieces[j])
                if union is not None:
                    pieces[i] = union
                    del pieces[j]
                    merged = True
                    break
            if merged:
                break
    return pieces


def _union_if_convex(p: np.ndarray, q: np.ndarray) -> np.ndarray | None:
    """The union of two convex polygons sharing a whole edge, if it is convex; else ``None``."""
    for i in range(len(p)):
        a, b = p[i], p[(i + 1) % len(p)]
        for j in range(len(q)):
            c, d = q[j], q[(j + 1) % len(q)]
            if np.allclose(a, d, atol=1e-10) and np.allclose(b, c, atol=1e-10):
                # Walk p from b round to a, then q from a (= d) round to b (= c).
                ring = [p[(i + 1 + k) % len(p)] for k in range(len(p))]
                ring += [q[(j + 2 + k) % len(q)] for k in range(len(q) - 2)]
                poly = _clean(np.array(ring))
                if len(poly) >= 3 and _is_convex(poly):
                    return poly
    return None


def symmetry_order(poly: np.ndarray, tol: float = SYMMETRY_TOL) -> int:
    """Largest ``n <= MAX_SYMMETRY`` with the centred outline invariant under rotation by 2 pi/n.

    ``tol`` (m) is absolute: a vertex may land this far from another one.
    """
    for n in range(MAX_SYMMETRY, 1, -1):
        if len(poly) % n:
            continue
        c, s = math.cos(2 * math.pi / n), math.sin(2 * math.pi / n)
        rotated = poly @ np.array([[c, s], [-s, c]])
        dist = np.linalg.norm(rotated[:, None, :] - poly[None, :, :], axis=-1).min(axis=1)
        if dist.max() < tol:
            return n
    return 1


# --- construction -----------------------------------------------------------------------------
def make_shape(polygon: Sequence[Sequence[float]] | np.ndarray, name: str = "custom") -> Shape:
    """Build a :class:`Shape` from a 2-D polygon.

    Args:
        polygon: Outline vertices ``[(x, y), ...]`` in metres, counter-clockwise (a clockwise
            outline is reversed), non-convex allowed, without repeating the first vertex.
        name: Name to report.

    Returns:
        The shape, re-centred on its area centroid.

    Raises:
        ValueError: If the polygon has fewer than 3 vertices or non-finite coordinates, repeats
            a vertex, is self-intersecting, has an edge shorter than :data:`MIN_EDGE`, is smaller
            than :data:`MIN_WIDTH` across, reaches beyond :data:`MAX_EXTENT`, or becomes
            self-intersecting when grown by :data:`CLEARANCE` (features too thin for a hole).
    """
    try:
        poly = np.array(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"shape polygon must be a sequence of (x, y) pairs in metres, got {polygon!r}"
        ) from None
    if poly.ndim != 2 or poly.shape[1] != 2:
        raise ValueError(
            f"shape polygon must have shape (N, 2): a list of (x, y) pairs, got {poly.shape}"
        )
    if len(poly) < 3:
        raise ValueError(f"shape polygon needs at least 3 vertices, got {len(poly)}")
    if not np.isfinite(poly).all():
        raise ValueError("shape polygon has non-finite coordinates")
    if np.allclose(poly[0], poly[-1]):
        raise ValueError("shape polygon repeats its first vertex at the end; drop the last one")
    edges = np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1)
    if edges.min() < MIN_EDGE:
        k = int(edges.argmin())
        raise ValueError(
            f"shape polygon edge {k} (vertex {k} to {(k + 1) % len(poly)}) is "
            f"{edges.min() * 1000:.2f} mm long; edges must be at least {MIN_EDGE * 1000:g} mm "
            "(coordinates are metres)"
        )
    hit = self_intersection(poly)
    if hit is not None:
        raise ValueError(
            f"shape polygon is self-intersecting: edges {hit[0]} and {hit[1]} touch or cross; "
            "give a simple outline (counter-clockwise, no repeated vertices)"
        )
    width = poly.max(axis=0) - poly.min(axis=0)
    if width.min() < MIN_WIDTH:
        raise ValueError(
            f"shape polygon is too small: {width[0] * 1000:.1f} x {width[1] * 1000:.1f} mm; "
            f"both extents must be at least {MIN_WIDTH * 1000:g} mm (coordinates are metres)"
        )
    if abs(signed_area(poly)) < MIN_AREA:
        raise ValueError(
            f"shape polygon encloses {abs(signed_area(poly)) * 1e6:.1f} mm², less than "
            f"{MIN_AREA * 1e6:g} mm² (collinear or sliver outline; coordinates are metres)"
        )
    if signed_area(poly) < 0:
        poly = poly[::-1].copy()
    poly = poly - area_centroid(poly)
    radius = float(np.linalg.norm(poly, axis=1).max())
    if radius > MAX_EXTENT:
        raise ValueError(
            f"shape polygon is too large: a vertex lies {radius:.3f} m from the centroid, the "
            f"limit is {MAX_EXTENT} m (coordinates are metres)"
        )
    pocket = offset_polygon(poly, CLEARANCE)
    if self_intersection(pocket) is not None or signed_area(pocket) <= signed_area(poly):
        raise ValueError(
            "shape polygon has a gap or notch too narrow for its hole: growing it by the "
            f"{CLEARANCE * 1000:g} mm clearance makes the outline self-intersecting"
        )
    pieces = tuple(_slab_pieces(poly, inside=True))
    plate_half = _plate_half(pocket)
    holes = tuple(_slab_pieces(pocket, inside=False, half=plate_half))
    return Shape(
        name=name,
        vertices=poly,
        pieces=pieces,
        hole_pieces=holes,
        symmetry=symmetry_order(poly),
        radius=radius,
        area=signed_area(poly),
        interior_angles=interior_angles(poly),
        plate_half=plate_half,
    )


def _regular(n: int, radius: float, phase: float = math.pi / 2) -> list[tuple[float, float]]:
    return [(radius * math.cos(phase + 2 * math.pi * k / n),
             radius * math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


def _star(points: int, outer: float, inner: float) -> list[tuple[float, float]]:
    out = []
    for k in range(2 * points):
        r = outer if k % 2 == 0 else inner
        a = math.pi / 2 + math.pi * k / points
        out.append((r * math.cos(a), r * math.sin(a)))
    return out


# Outlines in grid units (x UNIT metres), counter-clockwise.
_OUTLINES: dict[str, list[tuple[float, float]]] = {
    "plus": [(-1.5, -4), (1.5, -4), (1.5, -1.5), (4, -1.5), (4, 1.5), (1.5, 1.5), (1.5, 4),
             (-1.5, 4), (-1.5, 1.5), (-4, 1.5), (-4, -1.5), (-1.5, -1.5)],
    "pentagon": _regular(5, 4.2),
    "star": _star(5, 4.8, 2.2),
    "T": [(-1.4, -4), (1.4, -4), (1.4, 1.4), (4, 1.4), (4, 4), (-4, 4), (-4, 1.4), (-1.4, 1.4)],
    "diamond": [(0, -4.5), (3, 0), (0, 4.5), (-3, 0)],
    "heart": [(0, -4), (3.5, 0), (3.8, 2), (3, 3.5), (1.5, 3.8), (0, 2.5), (-1.5, 3.8),
              (-3, 3.5), (-3.8, 2), (-3.5, 0)],
    "hexagon": _regular(6, 4.0, 0.0),
    "triangle": _regular(3, 4.6),
    "A": [(-4, -4), (-1.8, -4), (-1.1, -1.5), (1.1, -1.5), (1.8, -4), (4, -4), (1.2, 4),
          (-1.2, 4)],
    "E": [(-4, -4), (4, -4), (4, -2), (-1, -2), (-1, -1), (3, -1), (3, 1), (-1, 1), (-1, 2),
          (4, 2), (4, 4), (-4, 4)],
    "L": [(-3, -4), (3, -4), (3, -1.5), (-0.5, -1.5), (-0.5, 4), (-3, 4)],
    "M": [(-4, -4), (-2, -4), (-2, 1), (0, -1.5), (2, 1), (2, -4), (4, -4), (4, 4), (2, 4),
          (0, 1.5), (-2, 4), (-4, 4)],
    "V": [(-1.2, -4), (1.2, -4), (4, 4), (2, 4), (0, -0.8), (-2, 4), (-4, 4)],
    "rectangle": [(-4, -2), (4, -2), (4, 2), (-4, 2)],
}

TRAIN_SHAPES: tuple[str, ...] = (
    "plus", "pentagon", "star", "T", "diamond", "heart", "hexagon", "triangle",
)
"""Shapes sampled by ``shape="train"`` (HEPi's insertion set)."""
TEST_SHAPES: tuple[str, ...] = ("A", "E", "L", "M", "V", "rectangle")
"""Held-out shapes sampled by ``shape="test"`` (never seen in training)."""
SHAPE_NAMES: tuple[str, ...] = TRAIN_SHAPES + TEST_SHAPES
"""Every built-in shape name."""

_CACHE: dict[str, Shape] = {}


def get_shape(name: str) -> Shape:
    """The built-in shape called ``name`` (built once, then cached).

    Raises:
        ValueError: For an unknown name (the message lists the built-in ones).
    """
    if name not in _OUTLINES:
        raise ValueError(
            f"Unknown shape {name!r}. Built-in shapes: {', '.join(SHAPE_NAMES)}; or pass "
            "shape='train' / 'test' to sample a split, or a polygon [(x, y), ...] in metres."
        )
    if name not in _CACHE:
        _CACHE[name] = make_shape(np.array(_OUTLINES[name]) * UNIT, name=name)
    return _CACHE[name]


MAX_BUILTIN_VERTICES: int = max(len(v) for v in _OUTLINES.values())
"""Most outline vertices of any built-in shape (the default padded object node count)."""

SPLITS: dict[str, tuple[str, ...]] = {"train": TRAIN_SHAPES, "test": TEST_SHAPES}
"""Shape splits by name, as accepted by ``shape=``."""

__all__ = [
    "CLEARANCE",
    "HEIGHT",
    "MAX_BUILTIN_VERTICES",
    "SHAPE_NAMES",
    "SPLITS",
    "Shape",
    "TEST_SHAPES",
    "TRAIN_SHAPES",
    "get_shape",
    "make_shape",
]

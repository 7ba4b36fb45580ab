"""Shapes of the rigid tasks: outlines, convex pieces, hole fixtures, symmetry, user polygons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from equigym.envs.manipulation.shapes import (
    CLEARANCE,
    MAX_BUILTIN_VERTICES,
    SHAPE_NAMES,
    SPLITS,
    TEST_SHAPES,
    TRAIN_SHAPES,
    get_shape,
    make_shape,
    offset_polygon,
    signed_area,
)

EXPECTED_SYMMETRY = {"plus": 4, "pentagon": 5, "star": 5, "T": 1, "diamond": 2, "heart": 1,
                     "hexagon": 6, "triangle": 3, "A": 1, "E": 1, "L": 1, "M": 1, "V": 1,
                     "rectangle": 2}


def inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over points."""
    x, y = pts[:, 0:1], pts[:, 1:2]
    a, b = poly, np.roll(poly, -1, axis=0)
    crosses = ((a[:, 1] > y) != (b[:, 1] > y)) & (
        x < (b[:, 0] - a[:, 0]) * (y - a[:, 1]) / (b[:, 1] - a[:, 1] + 1e-300) + a[:, 0]
    )
    return crosses.sum(axis=1) % 2 == 1


def segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point in ``p`` to segment ab."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def polygon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Smallest distance between the boundaries of two non-overlapping polygons."""
    best = math.inf
    for poly_a, poly_b in ((p, q), (q, p)):
        for i in range(len(poly_b)):
            d = segment_distance(poly_a, poly_b[i], poly_b[(i + 1) % len(poly_b)])
            best = min(best, float(d.min()))
    return best


def test_built_in_set_and_splits():
    assert len(SHAPE_NAMES) >= 14
    assert len(TRAIN_SHAPES) == 8 and len(TEST_SHAPES) >= 4
    assert not set(TRAIN_SHAPES) & set(TEST_SHAPES)
    assert set(TRAIN_SHAPES) | set(TEST_SHAPES) == set(SHAPE_NAMES)
    assert SPLITS == {"train": TRAIN_SHAPES, "test": TEST_SHAPES}
    assert MAX_BUILTIN_VERTICES == max(get_shape(n).n_vertices for n in SHAPE_NAMES)


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_outline_is_centred_and_counter_clockwise(name):
    s = get_shape(name)
    assert signed_area(s.vertices) > 0
    assert s.area == pytest.approx(signed_area(s.vertices))
    x, y = s.vertices[:, 0], s.vertices[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    centroid = np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6 * s.area)
    np.testing.assert_allclose(centroid, 0.0, atol=1e-12)
    assert 0.03 < s.radius < 0.1  # m: objects about 0.1 m across


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_pieces_are_convex_and_tile_the_outline(name):
    s = get_shape(name)
    for piece in s.pieces + s.hole_pieces:
        d = np.roll(piece, -1, axis=0) - piece
        cross = d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1)
        assert (cross > 0).all(), f"{name}: a piece is not strictly convex"
    # Sample the plate: points in the outline lie in exactly one object piece, others in none;
    # points outside the grown outline lie in exactly one fixture piece.
    rng = np.random.default_rng(0)
    pts = rng.uniform(-s.plate_half, s.plate_half, (4000, 2))
    in_obj = sum(inside(p, pts).astype(int) for p in s.pieces)
    in_hole = sum(inside(p, pts).astype(int) for p in s.hole_pieces)
    outline = inside(s.vertices, pts)
    pocket = inside(offset_polygon(s.vertices, CLEARANCE), pts)
    np.testing.assert_array_equal(in_obj, outline.astype(int))
    np.testing.assert_array_equal(in_hole, (~pocket).astype(int))
    assert sum(signed_area(p) for p in s.pieces) == pytest.approx(s.area, rel=1e-9)


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_hole_leaves_the_documented_clearance(name):
    s = get_shape(name)
    gaps = [polygon_distance(s.vertices, p) for p in s.hole_pieces]
    # No fixture piece comes closer than the clearance; the pocket walls touch the grown outline.
    assert min(gaps) == pytest.approx(CLEARANCE, abs=1e-9)


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_symmetry_order(name):
    s = get_shape(name)
    assert s.symmetry == EXPECTED_SYMMETRY[name]
    assert len(s.interior_angles) == s.n_vertices
    assert s.interior_angles.sum() == pytest.approx((s.n_vertices - 2) * math.pi)


def test_custom_polygon_builds_non_convex_shapes_and_reverses_clockwise():
    notch = [(0.0, 0.0), (0.06, 0.0), (0.06, 0.06), (0.03, 0.03), (0.0, 0.06)]  # arrow, concave
    s = make_shape(notch)
    assert s.name == "custom" and s.n_vertices == 5 and s.symmetry == 1
    assert len(s.pieces) >= 2  # a concave outline needs several convex pieces
    assert (s.interior_angles > math.pi).sum() == 1
    clockwise = make_shape(notch[::-1])
    assert signed_area(clockwise.vertices) > 0
    assert clockwise.area == pytest.approx(s.area)
    square = make_shape([(0, 0), (0.05, 0), (0.05, 0.05), (0, 0.05)])
    assert square.symmetry == 4


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([(0, 0), (0.05, 0)], "at least 3 vertices"),
        ([(0, 0), (0.05, 0.05), (0.1, 0.1)], "mm²"),
        ([(0, 0), (0.05, 0.05), (0.05, 0), (0, 0.05)], "self-intersecting"),
        ([(0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01)], "too small"),
        ([(0, 0), (1.0, 0), (1.0, 1.0), (0, 1.0)], "too large"),
        ([(0, 0), (0.05, 0), (float("nan"), 0.05)], "non-finite"),
        ([(0, 0), (0.05, 0), (0.05, 0.05), (0, 0)], "repeats its first vertex"),
        ([(0, 0), (0.05, 0), (0.05, 0.0401), (0.05, 0.04), (0, 0.05)], "mm long"),
        ([1, 2, 3], "shape (N, 2)"),
        ("not a polygon", "(x, y) pairs"),
        # A 5 mm slot: growing both walls by the 3 mm clearance closes it.
        ([(0, 0), (0.06, 0), (0.06, 0.06), (0.0325, 0.06), (0.0325, 0.01), (0.0275, 0.01),
          (0.0275, 0.06), (0, 0.06)], "too narrow"),
    ],
)
def test_custom_polygon_errors(polygon, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_shape(polygon)


def test_unknown_shape_name_lists_the_built_ins():
    with pytest.raises(ValueError, match="Built-in shapes: plus"):
        get_shape("octopus")


def test_near_symmetric_outline_and_sharp_tips():
    # 0.1 mm of noise on a hexagon: it still fits its hole in 6 orientations.
    rng = np.random.default_rng(0)
    hexagon = [(0.05 * math.cos(a), 0.05 * math.sin(a))
               for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    noisy = np.array(hexagon) + rng.uniform(-1e-4, 1e-4, (6, 2))
    assert make_shape(noisy).symmetry == 6
    # A sharp tip: the mitred pocket reaches far beyond radius + clearance; the plate covers it.
    spike = make_shape([(0, 0), (0.2, 0.01), (0, 0.02)])
    pocket = offset_polygon(spike.vertices, CLEARANCE)
    assert np.abs(pocket).max() > spike.radius + CLEARANCE
    assert spike.plate_half > np.abs(pocket).max()
    total = sum(signed_area(p) for p in spike.hole_pieces)
    assert total == pytest.approx((2 * spike.plate_half) ** 2 - signed_area(pocket), rel=1e-9)

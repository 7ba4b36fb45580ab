"""Evaluation reports: CSV and Markdown tables, bar charts, learning curves, orbit polar plots.

Everything here reads the plain result rows of :func:`equigym.evaluate.evaluate_runs` (dicts);
plots use matplotlib's non-interactive ``Agg`` backend, so they work without a display.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS: tuple[str, ...] = (
    "agent", "kind", "mode", "condition", "split", "episodes", "mean_return", "std_return",
    "mean_length", "success_rate", "sim_unstable", "score", "ratio_return", "ratio_success",
    "ratio_score", "run",
)  # fmt: skip
"""Columns of ``results.csv`` (one row per agent, action mode and condition)."""


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Set ``score`` and the held-out ÷ train ratios of return, success rate and score.

    ``score`` is the return normalised on its condition's episodes between the random policy (0)
    and the scripted controller (1), where both were evaluated (manipulation tasks), else
    ``None``: unlike raw returns, it compares conditions whose returns differ in scale or sign.
    Only held-out rows get ratios (``ratio_*``, divided by the same agent's and mode's ``train``
    row); a ratio needs that row, a positive score or success denominator, and returns of one
    sign (else ``None``: a ratio across a sign change or of a non-positive score reads wrongly).
    """
    ref = {(r["condition"], r["kind"]): r["mean_return"] for r in rows
           if r["kind"] in ("random", "scripted")}  # fmt: skip
    for r in rows:
        lo, hi = ref.get((r["condition"], "random")), ref.get((r["condition"], "scripted"))
        ok = lo is not None and hi is not None and hi != lo
        r["score"] = (r["mean_return"] - lo) / (hi - lo) if ok else None
    train = {(r["agent"], r["mode"]): r for r in rows if r["condition"] == "train"}
    for r in rows:
        base = train.get((r["agent"], r["mode"]))
        for key, value in (("return", "mean_return"), ("success", "success_rate"),
                           ("score", "score")):  # fmt: skip
            num, den = r.get(value), base.get(value) if base is not None else None
            ok = r["split"] == "held_out" and num is not None and den is not None
            ok = ok and (num * den > 0 if key == "return" else den > 0)
            r[f"ratio_{key}"] = num / den if ok else None


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """One line per row, :data:`COLUMNS` in order (missing values empty)."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r.get(k) is None else r[k] for k in COLUMNS})


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The results as a Markdown table (mean ± std return, success, held-out ÷ train)."""
    scored = any(r.get("score") is not None for r in rows)
    head = "| agent | mode | condition | split | episodes | return | success |"
    head += " score | held-out ÷ train (return) | (score) |" if scored else \
        " held-out ÷ train (return) | (success) |"
    lines = [head, "|" + "---|" * (10 if scored else 9)]
    for r in rows:
        ret = f"{r['mean_return']:.2f} ± {r['std_return']:.2f}"
        line = (f"| {r['agent']} | {r['mode']} | {r['condition']} | {r['split']} | "
                f"{r['episodes']} | {ret} | {_fmt(r.get('success_rate'), '.0%')} |")  # fmt: skip
        if scored:
            line += (f" {_fmt(r.get('score'))} | {_fmt(r.get('ratio_return'))} | "
                     f"{_fmt(r.get('ratio_score'))} |")  # fmt: skip
        else:
            line += f" {_fmt(r.get('ratio_return'))} | {_fmt(r.get('ratio_success'))} |"
        lines.append(line)
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_conditions(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Grouped bars: mean return (± std) per condition, one bar per agent and mode.

    With success rates, a second panel shows them the same way.
    """
    plt = _pyplot()
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    agents = list(dict.fromkeys((r["agent"], r["mode"]) for r in rows))
    has_success = any(r.get("success_rate") is not None for r in rows)
    fig, axes = plt.subplots(1, 2 if has_success else 1, figsize=(11 if has_success else 6.5, 4),
                             dpi=120, squeeze=False)  # fmt: skip
    width = 0.8 / max(len(agents), 1)
    x = np.arange(len(conditions))
    index = {(r["agent"], r["mode"], r["condition"]): r for r in rows}
    for a, (agent, mode) in enumerate(agents):
        label = agent if mode == "-" else f"{agent} ({mode[:3]}.)"
        got = [index.get((agent, mode, c)) for c in conditions]
        pos = x - 0.4 + width * (a + 0.5)
        means = [g["mean_return"] if g else np.nan for g in got]
        stds = [g["std_return"] if g else 0.0 for g in got]
        axes[0, 0].bar(pos, means, width, yerr=stds, capsize=2, label=label)
        if has_success:
            succ = [g.get("success_rate") if g and g.get("success_rate") is not None else np.nan
                    for g in got]  # fmt: skip
            axes[0, 1].bar(pos, succ, width, label=label)
    split = {r["condition"]: r["split"] for r in rows}
    ticks = [f"{c}\n({split[c].replace('_', '-')})" for c in conditions]
    for ax, ylabel in zip(axes[0], ("return (mean ± std)", "success rate"), strict=False):
        ax.set_xticks(x, ticks)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.axhline(0.0, color="k", lw=0.5)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def read_tensorboard(run_dir: Path, tags: Sequence[str]) -> dict[str, tuple[list, list]]:
    """Scalar series ``tag -> (steps, values)`` from the run's TensorBoard logs (``tb/``).

    Steps are sorted and unique (after a ``--resume`` the last logged value of a step wins).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, dict[int, float]] = {}
    for events_dir in sorted({p.parent for p in (run_dir / "tb").rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(events_dir), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in tags:
            if tag in acc.Tags().get("scalars", []):
                series = out.setdefault(tag, {})
                for ev in acc.Scalars(tag):
                    # A resumed run logs the lost interval's steps again: the later value wins.
                    series[ev.step] = ev.value
    return {tag: (sorted(v), [v[k] for k in sorted(v)]) for tag, v in out.items()}


CURVE_TAGS = ("eval/mean_return", "rollout/ep_rew_mean", "eval/success_rate")
"""TensorBoard scalars drawn as learning curves (when a run logged them)."""


def plot_learning_curves(runs: Sequence[tuple[str, Path]], path: Path, title: str) -> bool:
    """Learning curves of several runs side by side, read from their TensorBoard logs.

    Returns:
        ``False`` (and no file) when no run has TensorBoard scalars.
    """
    series = [(label, read_tensorboard(run_dir, CURVE_TAGS)) for label, run_dir in runs]
    tags = [t for t in CURVE_TAGS if any(t in s for _, s in series)]
    if not tags:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tags), figsize=(4.5 * len(tags), 3.6), dpi=120,
                             squeeze=False)  # fmt: skip
    for ax, tag in zip(axes[0], tags, strict=True):
        for label, s in series:
            if tag in s:
                ax.plot(*s[tag], label=label)
        ax.set_title(tag)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_orbits(orbits: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Polar plots along the orbit about gravity: policy error, scene error and return.

    One curve per run (untilted elements; the angle closes the circle). Errors use a log radial
    axis; returns a linear one centred on their range, so a flat curve is a circle.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=120, subplot_kw={"projection": "polar"})
    panels = (("policy_error", "policy error vs consensus"),
              ("scene_error", "rotated-scene error vs consensus"),
              ("return_mean", "return (mean over scenes)"))  # fmt: skip
    lims: dict[str, list[float]] = {key: [] for key, _ in panels}
    for label, orbit in orbits.items():
        rows = [r for r in orbit["elements"] if r["tilt_deg"] == 0]
        theta = np.deg2rad([r["angle_deg"] for r in rows] + [rows[0]["angle_deg"] + 360.0])
        for ax, (key, _) in zip(axes, panels, strict=True):
            vals = np.array([r[key] for r in rows] + [rows[0][key]])
            if key.endswith("error"):
                vals = np.maximum(vals, 1e-9)
            lims[key] += [float(vals.min()), float(vals.max())]
            ax.plot(theta, vals, marker="o", ms=3, label=label)
    for ax, (key, name) in zip(axes, panels, strict=True):
        lo, hi = min(lims[key]), max(lims[key])
        if key.endswith("error"):
            ax.set_rscale("log")
            ax.set_rlim(1e-9, max(hi * 10, 1e-6))
        else:
            pad = max(hi - lo, 0.2 * max(abs(lo), abs(hi)), 1e-6)
            ax.set_rlim(lo - pad, hi + pad)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[-1].legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.9, -0.1))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = [
    "COLUMNS",
    "CURVE_TAGS",
    "add_ratios",
    "markdown_table",
    "plot_conditions",
    "plot_learning_curves",
    "plot_orbits",
    "read_tensorboard",
    "write_csv",
]

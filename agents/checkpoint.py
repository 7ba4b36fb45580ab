"""Crash-safe checkpoints of SB3 models and resuming from them.

Every checkpoint is written to a temporary file in the same folder and moved into place with
``os.replace`` (atomic on POSIX and Windows), and ``latest.json`` is replaced last, so a crash or
``SIGKILL`` at any moment leaves the previous checkpoint complete and named: resuming loses at most
one checkpoint interval. Loading falls back to older checkpoints if the newest cannot be read.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

LATEST = "latest.json"
_MODEL = re.compile(r"model_(\d+)_steps\.zip$")


@dataclass(frozen=True)
class Checkpoint:
    """One saved checkpoint: the model file, its VecNormalize statistics (if any), its step."""

    model: Path
    vecnormalize: Path | None
    timesteps: int


def _atomic(write: Callable[[Path], None], target: Path) -> None:
    """Call ``write(tmp)`` on a temporary path next to ``target``, then move it into place."""
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class AtomicCheckpointCallback(BaseCallback):
    """Save the model (and reward-normalisation statistics) every ``save_freq`` env steps.

    Files in ``directory``: ``model_<steps>_steps.zip``, ``vecnormalize_<steps>_steps.pkl`` and
    ``latest.json`` naming the newest pair; the ``keep`` newest checkpoints are kept.

    Args:
        save_freq: Environment steps (summed over sub-envs) between checkpoints.
        directory: Folder of the checkpoints (created if needed).
        keep: How many checkpoints to keep (>= 1).
    """

    def __init__(self, save_freq: int, directory: str | os.PathLike, keep: int = 3) -> None:
        super().__init__()
        if save_freq < 1 or keep < 1:
            raise ValueError(f"save_freq and keep must be >= 1, got {save_freq}, {keep}")
        self.save_freq = int(save_freq)
        self.directory = Path(directory)
        self.keep = int(keep)
        self._last = 0

    def _on_training_start(self) -> None:
        # On resume, count the interval from the step the run continues at.
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.save_freq:
            self._last = self.num_timesteps
            save_checkpoint(self.model, self.directory, keep=self.keep)
        return True


def save_checkpoint(model: PPO, directory: str | os.PathLike, keep: int = 3) -> Checkpoint:
    """Write one checkpoint of ``model`` atomically and prune all but the ``keep`` newest."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    steps = int(model.num_timesteps)
    model_path = directory / f"model_{steps}_steps.zip"
    _atomic(model.save, model_path)
    vecnorm = model.get_vec_normalize_env()
    vn_path = None
    if vecnorm is not None:
        vn_path = directory / f"vecnormalize_{steps}_steps.pkl"
        _atomic(lambda p: vecnorm.save(str(p)), vn_path)
    record = {"timesteps": steps, "model": model_path.name,
              "vecnormalize": None if vn_path is None else vn_path.name}
    _atomic(lambda p: p.write_text(json.dumps(record) + "\n"), directory / LATEST)
    for old in list_checkpoints(directory)[keep:]:
        old.model.unlink(missing_ok=True)
        if old.vecnormalize is not None:
            old.vecnormalize.unlink(missing_ok=True)
    return Checkpoint(model_path, vn_path, steps)


def list_checkpoints(directory: str | os.PathLike) -> list[Checkpoint]:
    """The checkpoints in ``directory``, newest first."""
    directory = Path(directory)
    found = []
    for path in directory.glob("model_*_steps.zip"):
        match = _MODEL.search(path.name)
        if match:
            steps = int(match.group(1))
            vn = directory / f"vecnormalize_{steps}_steps.pkl"
            found.append(Checkpoint(path, vn if vn.exists() else None, steps))
    return sorted(found, key=lambda c: c.timesteps, reverse=True)


def load_latest(
    directory: str | os.PathLike, venv: VecEnv, device: str = "cpu"
) -> tuple[PPO, VecEnv, Checkpoint]:
    """Load the newest readable checkpoint in ``directory`` onto ``venv``.

    Args:
        directory: Checkpoint folder (``<run>/checkpoints``).
        venv: The (un-normalised) vector env to continue on; wrapped in the saved VecNormalize
            statistics when the checkpoint has them.
        device: Torch device.

    Returns:
        The model, the env it is attached to, and the checkpoint used.

    Raises:
        FileNotFoundError: If there is no checkpoint.
        ValueError: If no checkpoint can be read (each failure is listed).
    """
    directory = Path(directory)
    candidates = list_checkpoints(directory)
    if not candidates:
        raise FileNotFoundError(
            f"No checkpoint in {str(directory)!r}: nothing to resume from. The run may have "
            "stopped before its first checkpoint (see --checkpoint-freq); start it again."
        )
    failures = []
    for ckpt in candidates:
        try:
            env = venv if ckpt.vecnormalize is None else VecNormalize.load(
                str(ckpt.vecnormalize), venv
            )
            model = PPO.load(str(ckpt.model), env=env, device=device)
        except Exception as err:  # noqa: BLE001 - any unreadable file means: try the older one
            failures.append(f"{ckpt.model.name}: {type(err).__name__}: {err}")
            continue
        if failures:
            warnings.warn(
                f"Skipped unreadable checkpoint(s) {failures}; resuming from {ckpt.model.name}",
                stacklevel=2,
            )
        return model, env, ckpt
    raise ValueError(f"No readable checkpoint in {str(directory)!r}: " + "; ".join(failures))


__all__ = [
    "AtomicCheckpointCallback",
    "Checkpoint",
    "list_checkpoints",
    "load_latest",
    "save_checkpoint",
]

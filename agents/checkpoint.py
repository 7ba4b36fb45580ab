"""Crash-safe checkpoints of SB3 models and resuming from them.

Every checkpoint is written to a temporary file in the same folder and moved into place with
``os.replace`` (atomic on POSIX and Windows), and ``latest.json`` is replaced last, so a crash or
``SIGKILL`` at any moment leaves the previous checkpoint complete and named: resuming loses at most
one checkpoint interval. Loading falls back to older checkpoints if the newest cannot be read.

:func:`load_policy_weights` reads a saved model for evaluation **without unpickling anything**.
An SB3 ``.zip`` holds ``data`` (JSON whose ``policy_class``, spaces and schedules are
cloudpickled: loading them with ``PPO.load`` runs whatever code the file names), ``policy.pth``
(the network's state dict) and optimizer state. Evaluation needs only the weights: it reads
``policy.pth`` with ``torch.load(weights_only=True)`` (tensors and plain containers only) and
rebuilds the network from the run folder's plain-JSON ``config.json`` and ``graph_spec.json``.
Resuming training (:func:`load_latest`) does use ``PPO.load``: resume only your own runs.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
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


def atomic_write(write: Callable[[Path], None], target: Path) -> None:
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
    atomic_write(model.save, model_path)
    vecnorm = model.get_vec_normalize_env()
    vn_path = None
    if vecnorm is not None:
        vn_path = directory / f"vecnormalize_{steps}_steps.pkl"
        atomic_write(lambda p: vecnorm.save(str(p)), vn_path)
    record = {"timesteps": steps, "model": model_path.name,
              "vecnormalize": None if vn_path is None else vn_path.name}
    atomic_write(lambda p: p.write_text(json.dumps(record) + "\n"), directory / LATEST)
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


def load_policy_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], int | None]:
    """The graph policy's weights and step count in a saved model, without unpickling.

    Args:
        path: An SB3 model ``.zip`` written by equigym (``final_model.zip``, a checkpoint).

    Returns:
        The state dict of the graph policy (keys without the ``net.`` prefix) and the model's
        ``num_timesteps`` (``None`` if the file does not say).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If it is not a readable equigym model (not a zip, no ``policy.pth``, weights
            that need unpickling, no graph-policy weights).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            weights = archive.read("policy.pth")
            data = json.loads(archive.read("data")) if "data" in archive.namelist() else {}
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, KeyError, EOFError, RuntimeError, OSError,
            json.JSONDecodeError) as err:  # fmt: skip
        raise ValueError(
            f"{str(path)!r} is not a readable model file ({type(err).__name__}: {err}); it may "
            "be truncated or corrupt: use an older checkpoint from the run's checkpoints/ folder"
        ) from None
    except pickle.UnpicklingError as err:  # weights_only refused a pickled object
        raise ValueError(
            f"{str(path)!r} holds weights that only unpickling could read ({err}); equigym "
            "refuses to execute code from a model file"
        ) from None
    net = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    if not net:
        raise ValueError(f"{str(path)!r} has no graph-policy weights: not an equigym model")
    steps = data.get("num_timesteps")
    return net, int(steps) if isinstance(steps, int | float) else None


def read_json(path: Path, what: str) -> Any:
    """Parsed JSON of ``path``; a clear error when it is missing or unreadable."""
    if not path.is_file():
        raise FileNotFoundError(f"No {what} {str(path)!r}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {str(path)!r} is not readable JSON: {err}") from None


__all__ = [
    "AtomicCheckpointCallback",
    "Checkpoint",
    "atomic_write",
    "list_checkpoints",
    "load_latest",
    "load_policy_weights",
    "read_json",
    "save_checkpoint",
]

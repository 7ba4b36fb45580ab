"""Headless MP4 videos of evaluation episodes, several policies side by side.

Frames come from the envs' ``rgb_array`` rendering (MuJoCo's offscreen renderer; ``MUJOCO_GL=egl``
without a display) and are written with imageio's ffmpeg plugin (``pip install
"imageio[ffmpeg]"``). Each panel is labelled with its policy's name; a panel whose episode ended
earlier holds its last frame. Frames are streamed to the file, never all kept in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` with ``text`` drawn in its top-left corner (Pillow, part of matplotlib's deps)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((4, 4), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(img)


def side_by_side(panels: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
    """One frame: several (H, W, 3) uint8 frames of one size next to each other, labelled."""
    if not panels:
        raise ValueError("side_by_side needs at least one panel")
    return np.concatenate([_label(np.asarray(f), label) for label, f in panels], axis=1)


class Mp4Writer:
    """Stream frames into an H.264 MP4 (sizes padded to even numbers for the codec).

    Args:
        path: Output file.
        fps: Frames per second (the env's control rate plays in real time).

    Raises:
        ImportError: With the install command, if imageio's ffmpeg plugin is missing.
    """

    def __init__(self, path: Path, fps: float) -> None:
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401 (the plugin imageio needs for .mp4)
        except ImportError as err:
            raise ImportError(
                f"videos need imageio with ffmpeg: pip install 'imageio[ffmpeg]' ({err})"
            ) from None
        self.path = Path(path)
        self._writer = imageio.get_writer(self.path, fps=max(fps, 1.0), codec="libx264",
                                          macro_block_size=1, quality=7)  # fmt: skip
        self.frames = 0

    def append(self, frame: np.ndarray) -> None:
        """Add one frame."""
        h, w = frame.shape[:2]
        self._writer.append_data(np.pad(np.asarray(frame, dtype=np.uint8),
                                        ((0, h % 2), (0, w % 2), (0, 0))))  # fmt: skip
        self.frames += 1

    def close(self) -> None:
        """Finish the file."""
        self._writer.close()


__all__ = ["Mp4Writer", "side_by_side"]

"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import json
import os
from typing import Any


def write_report(report: dict[str, Any], out: str | None) -> None:
    """Write ``report`` as indented JSON to ``out`` (folders created), or print it if ``None``."""
    text = json.dumps(report, indent=2)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)

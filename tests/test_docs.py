"""The Python examples in the docs run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / "graph_observation.md"]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_examples_run(path):
    blocks = _blocks(path)
    assert blocks, f"{path} has no python example"
    for code in blocks:
        exec(compile(code, str(path), "exec"), {})

"""Loading tests/vectors/*.json for the Python-side and the C-side vector tests alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def cases(name: str, key: str = "cases") -> list[Any]:
    """pytest params, one per case of a vector file, each named after its case."""
    path = VECTORS / name
    if not path.exists():
        return [pytest.param(None, id=f"{name}-missing")]
    entries = json.loads(path.read_text(encoding="utf-8"))[key]
    return [pytest.param(case, id=case["name"]) for case in entries]


def need(case: Any, name: str) -> Any:
    """The case itself; a missing vector file fails loudly rather than passing vacuously."""
    if case is None:
        pytest.fail(f"tests/vectors/{name} is missing: both implementations must be checked")
    return case

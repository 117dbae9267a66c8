"""How a board comes to life: build, start, reset(kind), stop."""

from harness.targets.base import Target, make_target

__all__ = ["Target", "make_target"]

"""Put on PYTHONPATH, this makes libraries a process imports claim releases scoring_runtime was not tested with.

UNTESTED_RELEASES names them, comma-separated (default: uvicorn). Each one's version is patched as it is first
imported (an import hook), so that nothing else is imported early.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

UNTESTED_VERSION = "0.99.0"
PATCHED = set(os.environ.get("UNTESTED_RELEASES", "uvicorn").split(","))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in PATCHED:
            return None
        PATCHED.discard(name)
        if not PATCHED:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            module.__version__ = UNTESTED_VERSION

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _Finder())

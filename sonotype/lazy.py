"""Package attributes imported on first use (a module `__getattr__`, PEP 562).

A package whose public names live in heavy modules (torch, the Dask client, pyarrow's
compute kernels) re-exports them lazily, so that importing one light submodule of it,
as a Dask worker unpickling a task function does, does not import the rest.
"""

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of a package that imports `homes` on first use.

    Use in the package's `__init__.py`:
    `__getattr__, __dir__ = lazy_attributes(__name__, {"name": "package.module", ...})`.

    Args:
        package: the package's `__name__`.
        homes: public name → the module that defines it.
    """

    def getattr_(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name]), name)

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return getattr_, dir_

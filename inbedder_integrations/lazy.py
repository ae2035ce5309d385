"""Public names that import their module on first use (PEP 562): one mechanism for the package,
``engine/`` and ``serving/``.

A package lists each public name once, under the module that defines it, and hands that
mapping to :func:`lazy_exports`; the ``if TYPE_CHECKING:`` imports beside it are what type
checkers read (``tests/cross_cutting/test_layout.py`` checks the two agree).  So ``import
inbedder_integrations`` loads no torch and no framework, and a name whose module needs an
extra fails, when first used, with the command that installs it.  Imports nothing of the
package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    homes: Mapping[str, Sequence[str]],
    *,
    before: Callable[[str], None] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose public names live in ``homes``
    (a module, relative to ``package``, -> the names it defines).  ``before(home)`` runs before a
    name's module is first imported: where a missing extra is named."""
    where = {name: home for home, names in homes.items() for name in names}
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        home = where.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if before is not None:
            before(home)
        value = getattr(importlib.import_module(home, package), name)
        setattr(module, name, value)  # the next lookup finds it without coming here
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(where))

    return __getattr__, __dir__, sorted(where)

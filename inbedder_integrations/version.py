"""The installed distribution's version, for the package, the CLI and the server to report.

Imports nothing of the package, so that what reports the version need not import the
package's root (whose type-checking imports name every public module).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("inbedder-integrations")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

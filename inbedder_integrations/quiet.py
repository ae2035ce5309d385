"""Library calls print only what the caller asked for.

Loading a model through transformers prints its "Loading weights" (or GGUF
conversion) bar and, for the default model, a ``FutureWarning`` about
``is_gradient_checkpointing`` that its own code raises.  The package's loading calls
and the CLI run inside :func:`quiet_libraries`, which turns exactly these off and
puts everything back afterwards: a caller's own logging, bars and warning filters
outside those calls are untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator

__all__ = ["QUIET_WARNINGS", "quiet_libraries"]

#: Library warnings about the libraries' own code, which a user of this package cannot act on.
QUIET_WARNINGS = (r".*is_gradient_checkpointing.*",)
#: True inside ``quiet_libraries(verbose=True)`` (``inbedder --verbose``): the calls nested in it stay loud.
_VERBOSE = contextvars.ContextVar("inbedder_verbose_libraries", default=False)


@contextlib.contextmanager
def quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """While it runs: transformers' and huggingface_hub's logging (errors only) and progress
    bars off, and :data:`QUIET_WARNINGS` filtered; everything as it was afterwards.
    ``verbose``: change nothing, here and in the calls nested in it.  The package's own
    progress bars are plain tqdm and stay."""
    if verbose or _VERBOSE.get():
        token = _VERBOSE.set(True)
        try:
            yield
        finally:
            _VERBOSE.reset(token)
        return
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    verbosity = (transformers_logging.get_verbosity(), hub_utils.logging.get_verbosity())
    bars = (transformers_logging.is_progress_bar_enabled(), not hub_utils.are_progress_bars_disabled())
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    hub_utils.logging.set_verbosity_error()
    hub_utils.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            for message in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            yield
    finally:
        transformers_logging.set_verbosity(verbosity[0])
        hub_utils.logging.set_verbosity(verbosity[1])
        if bars[0]:
            transformers_logging.enable_progress_bar()
        if bars[1]:
            hub_utils.enable_progress_bars()

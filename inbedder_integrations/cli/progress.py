"""The one progress bar a long command shows on stderr (``data build``, ``train``, ``eval``).

The library never prints: its long jobs take a callback (``progress(done, total)``) or, for
``train``, a transformers ``TrainerCallback``; the command turns those into this bar, with an
ETA, and the library stays quiet when nobody asks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

__all__ = ["logging_redirect_tqdm", "progress_bar", "training_bar"]


@contextmanager
def progress_bar(desc: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback that draws one bar (its total may be set late)."""
    bar = tqdm(total=None, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
    with logging_redirect_tqdm(), bar:  # log lines print above the bar, not through it

        def advance(done: int, total: int) -> None:
            if bar.total != total:
                bar.reset(total=total)  # the ETA counts from when the size is known
            bar.update(done - bar.n)

        yield advance


def training_bar() -> Any:
    """A ``TrainerCallback`` that draws one bar over the optimiser steps, the last logged loss in
    its postfix, instead of transformers' printed dicts."""
    from transformers import TrainerCallback

    class TrainingBar(TrainerCallback):
        def __init__(self) -> None:
            self.bar: tqdm | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step",
                            file=sys.stderr, dynamic_ncols=True)  # fmt: skip

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.4g}", refresh=False)  # float: may be a str

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return TrainingBar()

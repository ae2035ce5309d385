"""One backoff schedule for everything that retries: a Chroma server that stops answering
(:class:`~inbedder_integrations.corpus.RetryPolicy`) and a busy or unreachable ``inbedder serve``
(:class:`~inbedder_integrations.remote.RemoteEmbedder`).

Both wait ``first_delay`` after the first failed try, twice as long after each next one, never
longer than ``max_delay``, and give up after ``attempts`` tries.  Imports only the ground floor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from .errors import InvalidArgumentError, positive_int

__all__ = ["Backoff", "retry_call"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How many tries, and how long to wait between them (doubling, capped).

    The defaults wait 0.5 + 1 + 2 + 4 + 8 + 8 + 8 = 31.5 s over 8 attempts.
    """

    attempts: int = 8
    first_delay: float = 0.5
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        positive_int("attempts", self.attempts)
        if not 0 <= self.first_delay <= self.max_delay:
            raise InvalidArgumentError("need 0 <= first_delay <= max_delay")

    def tries(self) -> Iterator[tuple[int, float]]:
        """``(attempt, delay)`` for each try, ``attempt`` from 1: ``delay`` is the wait before the
        next try should this one fail (0 for the last, after which there is none)."""
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            yield attempt, 0.0 if attempt == self.attempts else delay
            delay = min(delay * 2, self.max_delay)


def retry_call(
    backoff: Backoff,
    who: str,
    what: str,
    operation: Callable[[], T],
    transient: tuple[type[BaseException], ...],
    give_up: Callable[[str, int, float, BaseException], BaseException],
) -> T:
    """``operation()`` (``what``, asked of ``who``), tried again after each ``transient`` error as
    ``backoff`` says; once the tries are spent, ``give_up(what, attempts, seconds waited, last
    error)`` is raised from it."""
    waited = 0.0
    for attempt, delay in backoff.tries():
        try:
            return operation()
        except transient as exc:
            if attempt == backoff.attempts:
                raise give_up(what, attempt, waited, exc) from exc
            logger.warning(
                "%s did not answer (%s: %s); attempt %d of %d in %.1f s",
                *(who, what, exc, attempt + 1, backoff.attempts, delay),
            )
            time.sleep(delay)
            waited += delay
    raise AssertionError("unreachable")  # pragma: no cover

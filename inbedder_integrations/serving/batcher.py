"""Dynamic batching: requests that arrive together are embedded together.

Each request arrives tokenised (its prompt ids made once, by the handler) and
waits in one bounded queue; a single worker thread takes what arrived within
``max_wait`` of the oldest waiting request, up to a text and a token budget
counted in real prompt tokens, as TEI does, and embeds it in one go, across
clients and across instructions: a text asked for under several instructions
goes through one pass (its shared prompt prefix computed once), and the
engine's on-disk cache serves repeats.  One thread owns the model, so the event
loop never blocks on a forward pass and batches never compete for the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..engine import InBedder
from ..engine.prompting import EncodedPrompts
from ..errors import InBedderError, InvalidArgumentError
from .responses import InternalServerError

__all__ = [
    "DynamicBatcher",
    "EmbedRequest",
    "EmbedResult",
    "QueueFullError",
    "ServerClosingError",
    "TextTooLongError",
]

logger = logging.getLogger(__name__)


class QueueFullError(InBedderError, RuntimeError):
    """More texts are waiting than the server's ``max_queue``: retry after a short pause."""


class ServerClosingError(InBedderError, RuntimeError):
    """The server is shutting down and takes no new work."""


class TextTooLongError(InvalidArgumentError):
    """A text does not fit the model's prompt and the request asked not to cut it."""

    def __init__(self, index: int, tokens: int, max_length: int) -> None:
        super().__init__(
            f"inputs[{index}] needs more than {max_length} prompt tokens (the model's max_length); "
            "send truncate=true to embed its beginning"
        )
        self.index = index
        self.tokens = tokens


@dataclass(frozen=True)
class EmbedRequest:
    """A request's texts, tokenised under its instruction by the engine that embeds them."""

    prompts: EncodedPrompts
    normalize: bool = True

    @property
    def texts(self) -> tuple[str, ...]:
        return self.prompts.texts


@dataclass(frozen=True)
class EmbedResult:
    vectors: np.ndarray
    """float32, one row per text, in request order."""
    prompt_tokens: int
    """Prompt tokens embedded (after any cut): the usage a client is told."""


@dataclass
class _Job:
    request: EmbedRequest
    future: asyncio.Future[EmbedResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def tokens(self) -> int:
        return self.request.prompts.tokens


class DynamicBatcher:
    """One worker thread embedding batches of queued requests with one engine."""

    def __init__(
        self,
        engine: InBedder,
        *,
        max_batch_texts: int,
        max_batch_tokens: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: Callable[[int, int], None] | None = None,
        on_abandoned: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch_texts = max_batch_texts
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._on_abandoned = on_abandoned
        self._jobs: deque[_Job] = deque()
        self._queued_texts = 0
        self._queued_tokens = 0
        self._wakeup = threading.Condition()
        self._closing = False
        self._abandoning = False
        self._thread = threading.Thread(target=self._run, name="inbedder-batcher", daemon=True)

    @property
    def queued_texts(self) -> int:
        """Texts waiting for a batch (not those being embedded now)."""
        return self._queued_texts

    def start(self) -> None:
        self._thread.start()

    def refuse_new_work(self) -> None:
        """From now on :meth:`embed` raises :class:`ServerClosingError`; queued work goes on."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify_all()

    def abandon_queued(self) -> None:
        """Answer every queued request :class:`ServerClosingError` now, unembedded (a stopping
        server's grace is running out); the batch being embedded stops after its current slice."""
        with self._wakeup:
            self._abandoning = True
            jobs = list(self._jobs)
            self._jobs.clear()
            self._queued_texts = self._queued_tokens = 0
        if jobs:
            logger.warning("shutting down: %d queued requests answered 503, unembedded", len(jobs))
        for job in jobs:
            _deliver(job, ServerClosingError("the server is shutting down; retry on another replica"))

    def close(self, timeout: float | None = None) -> None:
        """Take no new work, finish what is queued, stop the worker."""
        self.refuse_new_work()
        if self._thread.is_alive():
            self._thread.join(timeout)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Queue ``request`` and wait for its vectors; raises :class:`QueueFullError` when full.
        Cancelling the wait (its client left) leaves the request unembedded if not begun."""
        if not request.texts:
            raise InvalidArgumentError("a request must hold at least one text")
        loop = asyncio.get_running_loop()
        job = _Job(request, loop.create_future(), loop)
        with self._wakeup:
            if self._closing:
                raise ServerClosingError("the server is shutting down")
            # An empty queue takes any request (max_inputs bounds it), so a request larger
            # than max_queue is served when the server is idle instead of refused forever.
            if self._queued_texts and self._queued_texts + len(request.texts) > self.max_queue:
                raise QueueFullError(
                    f"{self._queued_texts} texts are waiting (max_queue={self.max_queue}); retry shortly"
                )
            self._jobs.append(job)
            self._queued_texts += len(request.texts)
            self._queued_tokens += job.tokens
            self._wakeup.notify()
        return await job.future

    # ------------------------------------------------------------------ the worker thread

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            try:
                self._process(jobs)
            except Exception as exc:  # a bug: logged once here, each request answers a JSON 500
                logger.exception("a batch of %d requests failed", len(jobs))
                for job in jobs:
                    _deliver(job, InternalServerError(f"embedding failed: {type(exc).__name__}"))

    def _take(self) -> list[_Job] | None:
        """The next batch: what arrived within ``max_wait_s`` of the oldest job, within budget."""
        with self._wakeup:
            while True:
                while not self._jobs:
                    if self._closing:
                        return None
                    self._wakeup.wait()
                deadline = self._jobs[0].enqueued + self.max_wait_s
                while not self._closing and not self._full() and (left := deadline - time.monotonic()) > 0:
                    self._wakeup.wait(left)
                if self._jobs:  # else abandon_queued emptied the queue meanwhile
                    break
            batch = [self._jobs.popleft()]
            texts, tokens = len(batch[0].request.texts), batch[0].tokens
            while self._jobs:
                job = self._jobs[0]
                if (
                    texts + len(job.request.texts) > self.max_batch_texts
                    or tokens + job.tokens > self.max_batch_tokens
                ):
                    break
                batch.append(self._jobs.popleft())
                texts, tokens = texts + len(job.request.texts), tokens + job.tokens
            self._queued_texts -= texts
            self._queued_tokens -= tokens
            return batch

    def _full(self) -> bool:
        return self._queued_texts >= self.max_batch_texts or self._queued_tokens >= self.max_batch_tokens

    def _process(self, jobs: list[_Job]) -> None:
        """Embed the live jobs' prompts, then answer each job.  A request's own fault (an
        :class:`InBedderError`) fails that request alone; anything else is a bug, and
        reaches :meth:`_run`."""
        live = []
        for job in jobs:
            if job.future.cancelled():  # the client went away while it waited
                if self._on_abandoned is not None:
                    self._on_abandoned(len(job.request.texts))
                continue
            live.append(job)
        if not live:
            return
        pieces, embedded = self._embed_slices(live)
        if self._on_batch is not None:
            self._on_batch(len(live), embedded)
        for job, parts in zip(live, pieces, strict=True):
            failed = next((part for part in parts if isinstance(part, InBedderError)), None)
            if failed is not None:
                _deliver(job, failed)
                continue
            vectors = np.concatenate([part for part in parts if isinstance(part, np.ndarray)])
            if job.request.normalize:
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            _deliver(job, EmbedResult(vectors.astype(np.float32, copy=False), job.tokens))

    def _embed_slices(self, jobs: list[_Job]) -> tuple[list[list[np.ndarray | InBedderError]], int]:
        """Each job's vectors, as pieces in order, and how many texts reached the model.

        The jobs' prompts are embedded ``max_batch_texts`` at a time (a large request is
        cut across slices); between slices the work stops when every client has left, or
        when a stopping server abandons its queue (those pieces then hold the error).
        """
        pieces: list[list[np.ndarray | InBedderError]] = [[] for _ in jobs]
        embedded = skipped = 0
        for slice_ in self._slices(jobs):
            parts = [part for _, part in slice_]
            stop = self._interruption(jobs)
            if stop is not None:
                skipped += sum(len(part) for part in parts)
                outcomes: list[np.ndarray | InBedderError] = [stop] * len(parts)
            else:
                embedded += len({text for part in parts for text in part.texts})
                try:
                    outcomes = list(self.engine.embed_encoded(parts, normalize=False))
                except InBedderError as exc:  # these texts' fault: their requests alone fail
                    logger.info("embedding %d texts failed: %s", sum(len(part) for part in parts), exc)
                    outcomes = [exc] * len(parts)
            for (job_index, _), outcome in zip(slice_, outcomes, strict=True):
                pieces[job_index].append(outcome)
        if self._on_abandoned is not None and skipped and not self._abandoning:
            self._on_abandoned(skipped)  # every client left mid-way
        return pieces, embedded

    def _slices(self, jobs: list[_Job]) -> list[list[tuple[int, EncodedPrompts]]]:
        """(job index, part of its prompts) in slices of at most ``max_batch_texts`` texts."""
        slices: list[list[tuple[int, EncodedPrompts]]] = [[]]
        room = self.max_batch_texts
        for index, job in enumerate(jobs):
            prompts, start = job.request.prompts, 0
            while start < len(prompts):
                if room == 0:
                    slices.append([])
                    room = self.max_batch_texts
                stop = min(len(prompts), start + room)
                slices[-1].append((index, prompts.part(start, stop)))
                room -= stop - start
                start = stop
        return slices

    def _interruption(self, jobs: list[_Job]) -> InBedderError | None:
        """Why the rest of ``jobs``' work must not run, or None."""
        if self._abandoning:
            return ServerClosingError("the server is shutting down; retry on another replica")
        if all(job.future.cancelled() for job in jobs):
            return ServerClosingError("every client of this batch has disconnected")
        return None


def _deliver(job: _Job, outcome: EmbedResult | Exception) -> None:
    """Hand ``outcome`` to the waiting request on its event loop (unless it was cancelled)."""

    def settle() -> None:
        if job.future.done():
            return
        if isinstance(outcome, Exception):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        job.loop.call_soon_threadsafe(settle)

"""Dynamic batching: requests that arrive together are embedded together.

The batcher is the server's one way into the engine.  :meth:`DynamicBatcher.encode`
checks and tokenises a request's texts once, on arrival (off the event loop); the
request then waits in one bounded queue, and a single worker thread takes what
arrived within ``max_wait`` of the oldest waiting request, up to a text and a token
budget counted in real prompt tokens, as TEI does.  Each batch goes to the engine
once, across clients and across instructions (a text asked for under several
instructions goes through one pass, its shared prompt prefix computed once), and
the engine normalises the vectors and serves repeats from its cache.  A request
larger than ``max_batch_texts`` is taken a batch's worth at a time, so a stopping
server or a departed client stops its work between batches.  One thread owns the
model, so the event loop never blocks on a forward pass and batches never compete
for the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
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


@dataclass(eq=False)
class _Job:
    request: EmbedRequest
    future: asyncio.Future[EmbedResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)
    taken: int = 0
    """Texts handed to batches so far (a request larger than a batch is taken in parts)."""
    done: list[np.ndarray] = field(default_factory=list)
    """The vectors of the parts embedded so far, in order."""

    @property
    def left(self) -> int:
        """Texts not yet handed to a batch."""
        return len(self.request.texts) - self.taken

    def tokens(self, start: int, stop: int | None = None) -> int:
        return sum(len(ids) for ids in self.request.prompts.ids[start:stop])


@dataclass(frozen=True)
class _Part:
    """Texts ``start:stop`` of a job, in one batch."""

    job: _Job
    start: int
    stop: int

    @property
    def prompts(self) -> EncodedPrompts:
        return self.job.request.prompts.part(self.start, self.stop)


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
        server's grace is running out); a request being embedded stops after its current batch."""
        with self._wakeup:
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

    async def encode(
        self, texts: Sequence[str], instruction: str, *, argument: str = "texts", normalize: bool = True
    ) -> EmbedRequest:
        """``texts`` checked and tokenised once under ``instruction``, off the event loop
        (``argument`` names them in errors): the request :meth:`embed` takes."""
        encode = self.engine.encode_prompts
        prompts = await asyncio.to_thread(encode, texts, instruction, argument=argument)
        return EmbedRequest(prompts, normalize=normalize)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Queue ``request`` and wait for its vectors; raises :class:`QueueFullError` when full.
        Cancelling the wait (its client left) leaves its texts not yet begun unembedded."""
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
            self._queued_tokens += request.prompts.tokens
            self._wakeup.notify()
        return await job.future

    # ------------------------------------------------------------------ the worker thread

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._process(batch)
            except Exception as exc:  # a bug: logged once here, each request answers a JSON 500
                logger.exception("a batch of %d requests failed", len(batch))
                for part in batch:
                    self._drop(part.job)
                    _deliver(part.job, InternalServerError(f"embedding failed: {type(exc).__name__}"))

    def _take(self) -> list[_Part] | None:
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
                batch = self._fill()
                if batch:  # else the queue was emptied meanwhile (abandoned, or every client left)
                    return batch

    def _full(self) -> bool:
        return self._queued_texts >= self.max_batch_texts or self._queued_tokens >= self.max_batch_tokens

    def _fill(self) -> list[_Part]:
        """Take a batch off the queue (under the lock): the oldest live job's next
        ``max_batch_texts`` texts; if that is all of it, the whole jobs after it that fit
        both budgets and ask for the same normalisation (a batch goes to the engine once)."""
        self._skip_departed()
        if not self._jobs:
            return []
        head = self._jobs[0]
        batch = [self._claim(head, min(head.left, self.max_batch_texts))]
        if head.left:
            return batch  # a large request: the rest of it waits at the head of the queue
        self._jobs.popleft()
        texts, tokens = len(batch[0].prompts), head.tokens(batch[0].start)
        while self._jobs:
            job = self._jobs[0]
            if job.future.cancelled():
                self._skip_departed()
                continue
            if (
                job.request.normalize != head.request.normalize
                or texts + job.left > self.max_batch_texts
                or tokens + job.tokens(0) > self.max_batch_tokens
            ):
                break
            batch.append(self._claim(self._jobs.popleft(), job.left))
            texts, tokens = texts + len(job.request.texts), tokens + job.tokens(0)
        return batch

    def _claim(self, job: _Job, count: int) -> _Part:
        """The next ``count`` texts of ``job``, off the queue's counts."""
        part = _Part(job, job.taken, job.taken + count)
        job.taken = part.stop
        self._queued_texts -= count
        self._queued_tokens -= job.tokens(part.start, part.stop)
        return part

    def _skip_departed(self) -> None:
        """Drop the jobs at the head of the queue whose clients have left; their texts not
        yet embedded are counted as abandoned."""
        while self._jobs and self._jobs[0].future.cancelled():
            job = self._jobs.popleft()
            left = job.left
            self._claim(job, left)
            if self._on_abandoned is not None:
                self._on_abandoned(left)

    def _drop(self, job: _Job) -> None:
        """Take ``job`` off the queue, if any of it is still there (it failed)."""
        with self._wakeup:
            if job in self._jobs:
                self._jobs.remove(job)
                self._claim(job, job.left)

    def _process(self, batch: list[_Part]) -> None:
        """Embed the batch's live parts in one engine call, then answer each finished job.
        A request's own fault (an :class:`InBedderError`) fails that batch's requests alone;
        anything else is a bug, and reaches :meth:`_run`."""
        live = [part for part in batch if not part.job.future.cancelled()]
        gone = sum(part.stop - part.start for part in batch if part.job.future.cancelled())
        if gone and self._on_abandoned is not None:
            self._on_abandoned(gone)
        if not live:
            return
        prompts = [part.prompts for part in live]
        try:
            vectors = self.engine.embed_encoded(prompts, normalize=live[0].job.request.normalize)
        except InBedderError as exc:  # these texts' fault: their requests alone fail
            logger.info("embedding %d texts failed: %s", sum(len(p) for p in prompts), exc)
            self._count(prompts)
            for part in live:
                self._drop(part.job)
                _deliver(part.job, exc)
            return
        self._count(prompts)
        for part, matrix in zip(live, vectors, strict=True):
            job = part.job
            job.done.append(matrix)
            if part.stop == len(job.request.texts):
                whole = job.done[0] if len(job.done) == 1 else np.concatenate(job.done)
                _deliver(job, EmbedResult(whole, job.request.prompts.tokens))

    def _count(self, prompts: list[EncodedPrompts]) -> None:
        """Metrics: a batch of ``len(prompts)`` requests reached the model with its distinct texts."""
        if self._on_batch is not None:
            self._on_batch(len(prompts), len({text for part in prompts for text in part.texts}))


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

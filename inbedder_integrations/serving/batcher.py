"""Dynamic batching: requests that arrive together are embedded together.

Each request waits in one bounded queue; a single worker thread takes what
arrived within ``max_wait`` of the oldest waiting request (up to a text and
token budget) and embeds it in one go, across clients and across
instructions: a text asked for under several instructions goes through
:meth:`InBedder.embed_many` (its shared prompt prefix computed once), and the
engine's on-disk cache serves repeats.  One thread owns the model, so the event
loop never blocks on a forward pass and batches never compete for the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..engine import InBedder
from ..errors import InBedderError, InvalidArgumentError

__all__ = [
    "DynamicBatcher",
    "EmbedRequest",
    "EmbedResult",
    "QueueFullError",
    "ServerClosingError",
    "TextTooLongError",
]

logger = logging.getLogger(__name__)

#: Tokens the template and an instruction add to a text, for the batch budget's estimate.
_PROMPT_OVERHEAD_TOKENS = 32


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
    """Texts to embed under one instruction (already validated)."""

    texts: list[str]
    instruction: str
    normalize: bool = True
    truncate: bool = True
    """False: a text longer than the prompt allows fails the request (TEI's default)."""


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
    tokens: int
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """One worker thread embedding batches of queued requests with one engine."""

    def __init__(
        self,
        engine: InBedder,
        *,
        max_batch_texts: int = 64,
        max_batch_tokens: int = 16384,
        max_wait_s: float = 0.005,
        max_queue: int = 1024,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch_texts = max_batch_texts
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
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

    def close(self, timeout: float | None = None) -> None:
        """Take no new work, finish what is queued, stop the worker."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """Queue ``request`` and wait for its vectors; raises :class:`QueueFullError` when full."""
        loop = asyncio.get_running_loop()
        estimate = sum(min(len(text) // 3, self.engine.max_length) for text in request.texts)
        job = _Job(
            request, loop.create_future(), loop, estimate + _PROMPT_OVERHEAD_TOKENS * len(request.texts)
        )
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
            except Exception as exc:  # a bug: fail this batch's requests, keep serving
                logger.exception("a batch of %d requests failed", len(jobs))
                for job in jobs:
                    _deliver(job, exc)

    def _take(self) -> list[_Job] | None:
        """The next batch: what arrived within ``max_wait_s`` of the oldest job, within budget."""
        with self._wakeup:
            while not self._jobs:
                if self._closing:
                    return None
                self._wakeup.wait()
            deadline = self._jobs[0].enqueued + self.max_wait_s
            while not self._closing and not self._full() and (left := deadline - time.monotonic()) > 0:
                self._wakeup.wait(left)
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
        """Embed every (text, instruction) pair of the live jobs once, then answer each job."""
        live: list[tuple[_Job, int]] = []
        for job in jobs:
            if job.future.cancelled():  # the client went away while it waited
                continue
            try:
                live.append((job, self._prompt_tokens(job.request)))
            except Exception as exc:
                _deliver(job, exc)
        raw = self._embed_pairs([job.request for job, _ in live])
        if self._on_batch is not None:
            self._on_batch(len(live), sum(len(job.request.texts) for job, _ in live))
        for job, tokens in live:
            request = job.request
            try:
                vectors = np.stack([_found(raw, text, request.instruction) for text in request.texts])
            except Exception as exc:
                _deliver(job, exc)
                continue
            if request.normalize:
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            _deliver(job, EmbedResult(vectors.astype(np.float32, copy=False), tokens))

    def _prompt_tokens(self, request: EmbedRequest) -> int:
        sizes = self.engine.prompt_sizes(request.texts, request.instruction)
        if not request.truncate:
            for index, size in enumerate(sizes):
                if size.truncated:
                    raise TextTooLongError(index, size.tokens, self.engine.max_length)
        return sum(size.tokens for size in sizes)

    def _embed_pairs(self, requests: list[EmbedRequest]) -> dict[tuple[str, str], np.ndarray | Exception]:
        """Raw vectors by (text, instruction): texts asked under the same set of instructions are
        embedded in one ``embed_many`` call (through the shared prefix where that set has several)."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for request in requests:
            for text in request.texts:
                wanted[text].add(request.instruction)
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for text, instructions in wanted.items():
            groups[tuple(sorted(instructions))].append(text)
        raw: dict[tuple[str, str], np.ndarray | Exception] = {}
        for instructions, texts in groups.items():
            try:
                vectors = self.engine.embed_many(texts, list(instructions), normalize=False)
            except Exception as exc:
                logger.warning("embedding %d texts failed: %s", len(texts), exc)
                raw.update({(text, q): exc for text in texts for q in instructions})
                continue
            for instruction, matrix in vectors.items():
                raw.update({(text, instruction): row for text, row in zip(texts, matrix, strict=True)})
        return raw


def _found(raw: dict[tuple[str, str], np.ndarray | Exception], text: str, instruction: str) -> np.ndarray:
    vector = raw[(text, instruction)]
    if isinstance(vector, Exception):
        raise vector
    return vector


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

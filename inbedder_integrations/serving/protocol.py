"""uvicorn's HTTP protocol with a deadline on each request's head.

uvicorn bounds an idle keep-alive connection but not one that never finishes a
request's head: a client that opens a connection and sends nothing, or sends its
headers a byte at a time, would hold a connection (and a file descriptor) forever.
The body's own deadline is the :class:`~.guard.Guard`'s, which can answer 408.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["protocol_with_header_timeout"]


def protocol_with_header_timeout(header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's own HTTP protocol (httptools, else h11) that closes a connection whose next
    request's head is not complete ``header_timeout_s`` after it opened or last answered."""
    base: Any = AutoHTTPProtocol

    class HeaderTimeoutProtocol(base):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None
        _cycle_awaited: object = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_head()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._head_timer is not None and self.cycle is not self._cycle_awaited:
                self._stop_waiting()  # a new request's head is complete

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            self._stop_waiting()
            self._cycle_awaited = self.cycle
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _stop_waiting(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            idle = self.cycle is None or self.cycle.response_complete
            if self.cycle is self._cycle_awaited and idle and not self.transport.is_closing():
                self.logger.debug("closing a connection that sent no complete request head in time")
                self.transport.close()

    return HeaderTimeoutProtocol

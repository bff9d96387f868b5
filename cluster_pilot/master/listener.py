"""The master's HTTP connections: uvicorn's h11 protocol with the bounds it lacks against slow clients.

uvicorn times out only an idle keep-alive connection; a client that sends its request head or its body one
byte at a time holds a connection (and a file descriptor) for as long as it likes. This subclass watches each
connection's phase from h11's own state: the whole head must arrive within ``head_timeout`` seconds, a body
must keep to ``body_rate`` bytes a second on average once ``body_grace`` seconds have passed, and one client
address may hold at most ``per_address`` connections. A connection over a bound is aborted (there is no one
to answer: the client is not reading yet). The same class serves every listener, plain loopback and TLS.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

CHECK_EVERY = 0.5


@dataclass(frozen=True)
class Limits:
    head_timeout: float = 10.0
    body_rate: int = 1024
    body_grace: float = 5.0
    per_address: int = 64
    linger_seconds: float = 5.0
    linger_bytes: int = 16 << 20


class BoundedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, limits: Limits = Limits(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._phase: Any = None
        self._since = 0.0
        self._received = 0
        self._at_phase = 0
        self._watch: asyncio.TimerHandle | None = None
        self._lingering = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else None
        if address is not None and sum(1 for c in self.connections
                                       if c.client and c.client[0] == address) > self.limits.per_address:
            transport.abort()
            return
        self._phase, self._since = self.conn.their_state, time.monotonic()
        self.transport = _Lingering(transport, self)  # type: ignore[assignment]
        self._watch = self.loop.call_later(CHECK_EVERY, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        if self._lingering:
            self._lingering += len(data)
            if self._lingering > self.limits.linger_bytes:
                self.transport.abort()
            return
        super().data_received(data)
        self._note()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._note()

    def _note(self) -> None:
        """Start the clock when the client's side enters a phase: awaiting a head (IDLE), sending a body."""
        if self.conn.their_state is not self._phase:
            self._phase, self._since, self._at_phase = self.conn.their_state, time.monotonic(), self._received

    def _check(self) -> None:
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        self._note()
        elapsed, state = time.monotonic() - self._since, self._phase
        slow_head = state is h11.IDLE and elapsed > self.limits.head_timeout
        slow_body = (state is h11.SEND_BODY and elapsed > self.limits.body_grace
                     and self._received - self._at_phase < self.limits.body_rate * (elapsed - self.limits.body_grace))
        if slow_head or slow_body:
            self.transport.abort()
            return
        self._watch = self.loop.call_later(CHECK_EVERY, self._check)


    def eof_received(self) -> None:
        if self._lingering:
            self.transport.abort()

    def linger(self, transport: asyncio.Transport) -> bool:
        """After an early answer (401, 413, 400) to a request whose body is still coming, read and discard it
        for a bounded time and size before closing, so a client that sends all before it reads (urllib) reads
        the answer rather than a reset; as Go's server and Apache do."""
        if self._lingering or transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return False
        self._lingering = 1
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(self.limits.linger_seconds, transport.abort)
        return True


class _Lingering:
    """The transport as uvicorn's request cycle sees it: ``close`` lingers when a body is left unread."""

    def __init__(self, transport: asyncio.Transport, protocol: BoundedH11Protocol) -> None:
        self._transport, self._protocol = transport, protocol

    def close(self) -> None:
        if not self._protocol.linger(self._transport):
            self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def protocol(limits: Limits = Limits()) -> Any:
    """The class to give uvicorn as ``http=``."""
    return functools.partial(BoundedH11Protocol, limits=limits)

"""A door's client that leaves mid-request: its speech stops before the next chunk instead of
being synthesized to its end for nobody.

The door marks its client gone (``Departure.leave``, from its event loop) or hands in a look at
its connection (``connected``) that the speak worker makes from its own thread. The worker asks
before each chunk, streamed or not (``SpeakService``), and a ``ClientAudio``'s ``chunk`` asks
too: either way the request fails with ``client_gone`` and its ``speak.failed`` event."""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.errors import ServiceError

CLIENT_GONE = "client_gone"


def _always() -> bool:
    return True


class Departure:
    """Whether the client of one door's request (or connection) is still there."""

    def __init__(self, who: str, where: str, connected: Callable[[], bool] = _always) -> None:
        """``who`` and ``where``, for the message: ``the WebSocket client``, ``10.0.0.5``."""
        self.who = who
        self.where = where
        self._left = threading.Event()
        self._connected = connected

    def leave(self) -> None:
        self._left.set()

    @property
    def gone(self) -> bool:
        return self._left.is_set() or not self._connected()

    def check(self) -> None:
        """Raise ``client_gone`` once the client has gone: the speak worker stops there."""
        if self.gone:
            raise ServiceError(CLIENT_GONE, f"{self.who} has gone ({self.where})")


class ClientAudio:
    """Base of the ``AudioOut``s whose client can leave: ``chunk`` refuses once it has."""

    def __init__(self, departure: Departure) -> None:
        self.departure = departure

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None:
        """Called on the speak worker's thread: raising stops its request before the next sentence."""
        self.departure.check()
        self.deliver(wav)

    def deliver(self, wav: bytes) -> None:
        """Hand one sentence's WAV on (the client was still there a moment ago)."""
        raise NotImplementedError


def check_client(out: object) -> None:
    """For the speak worker before each chunk: ``client_gone`` when ``out``'s client has left
    (other outs, MQTT's, have no client to lose)."""
    if isinstance(out, ClientAudio):
        out.departure.check()

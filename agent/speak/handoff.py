"""Audio handed from the speak worker's thread to a door's asyncio loop.

The speak worker calls an ``AudioOut`` on its own thread; a door that writes to its clients from
an event loop (the streamed ``POST /api/tts``, the OpenAI route, the WebSocket, Wyoming) must
not touch the loop's objects from there. ``LoopAudio`` queues each piece on the loop instead
(``call_soon_threadsafe``), and ``DONE`` after the request's answer, so the door reads the
pieces in order and knows when the last has come."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.speak.departure import ClientAudio, Departure

DONE = object()  # the queue's last item: the speak answer is in (``LoopAudio.finished``)


class LoopAudio(ClientAudio):
    """A door's ``AudioOut`` whose pieces (files, or one stream's bytes) are queued on ``loop``:
    the door awaits ``queue`` until ``DONE``. ``where`` is what ``speak.finished`` reports."""

    def __init__(self, loop: asyncio.AbstractEventLoop, departure: Departure, where: str) -> None:
        super().__init__(departure)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop = loop
        self._where = where

    def deliver(self, audio: bytes) -> None:
        self._put(audio)

    def whole(self, request_id: str, audio: bytes) -> None:
        self._put(audio)

    def where(self, request_id: str, stream: bool) -> str:
        return self._where

    def finished(self, future: object) -> None:
        """The request is answered (a done callback of its future): after its last piece, since
        the worker hands its audio over before it answers."""
        self._put(DONE)

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: the door stopped while the worker spoke
            pass

"""The speak worker's audio handed to a door's loop (agent/speak/handoff.py): from another thread,
in order, ``DONE`` after the answer; a closed loop is no error (the door stopped while the worker
spoke); a client that has gone is refused before its piece is queued."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

import pytest

from agent.errors import ServiceError
from agent.speak.departure import Departure
from agent.speak.handoff import DONE, LoopAudio

WAIT = 30  # seconds a step may take (never reached when it works)


def test_pieces_from_the_worker_thread_arrive_in_order_then_done() -> None:
    async def main() -> tuple[list[Any], str]:
        out = LoopAudio(asyncio.get_running_loop(), Departure("the client", "here"), "websocket")
        answer: Future[dict[str, Any]] = Future()
        answer.add_done_callback(out.finished)

        def work() -> None:  # as the speak worker: its pieces, then its answer
            for seq in range(3):
                out.chunk("r1", seq, b"piece%d" % seq)
            out.whole("r1", b"whole")
            answer.set_result({"id": "r1"})

        threading.Thread(target=work).start()
        got = []
        while (item := await out.queue.get()) is not DONE:
            got.append(item)
        got.append(DONE)
        return got, out.where("r1", True)

    got, where = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert got == [b"piece0", b"piece1", b"piece2", b"whole", DONE]
    assert where == "websocket"


def test_a_closed_loop_takes_nothing_and_raises_nothing() -> None:
    loop = asyncio.new_event_loop()
    out = LoopAudio(loop, Departure("the client", "here"), "http")
    loop.close()
    out.deliver(b"late")  # the door stopped while the worker spoke
    out.finished(None)
    assert out.queue.empty()


def test_a_client_that_has_gone_is_refused_before_its_piece_is_queued() -> None:
    async def main() -> LoopAudio:
        departure = Departure("the Wyoming client", "wyoming://10.0.0.5:4000")
        out = LoopAudio(asyncio.get_running_loop(), departure, "wyoming://10.0.0.5:4000")
        departure.leave()
        with pytest.raises(ServiceError) as gone:
            out.chunk("r1", 0, b"nobody hears this")
        assert gone.value.code == "client_gone"
        await asyncio.sleep(0)
        return out

    assert asyncio.run(main()).queue.empty()

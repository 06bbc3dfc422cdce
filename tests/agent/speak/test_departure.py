"""A door's client that leaves: its request's audio is refused (``client_gone``) from then on,
whether the door marked it or its connection says so."""

from __future__ import annotations

import pytest

from agent.errors import ServiceError
from agent.speak.departure import ClientAudio, Departure, check_client


class Kept(ClientAudio):
    def __init__(self, departure: Departure) -> None:
        super().__init__(departure)
        self.kept: list[bytes] = []

    def deliver(self, wav: bytes) -> None:
        self.kept.append(wav)


def test_a_client_still_there_gets_every_chunk() -> None:
    out = Kept(Departure("the WebSocket client", "10.0.0.5"))
    out.chunk("r1", 0, b"one")
    out.chunk("r1", 1, b"two")
    check_client(out)
    assert out.kept == [b"one", b"two"] and not out.departure.gone


def test_once_the_door_marks_its_client_gone_the_next_chunk_is_refused() -> None:
    out = Kept(Departure("the WebSocket client", "10.0.0.5"))
    out.chunk("r1", 0, b"one")
    out.departure.leave()
    with pytest.raises(ServiceError) as refused:
        out.chunk("r1", 1, b"two")
    assert refused.value.code == "client_gone" and str(refused.value) == "the WebSocket client has gone (10.0.0.5)"
    assert out.kept == [b"one"]
    with pytest.raises(ServiceError, match="has gone"):
        check_client(out)  # what the speak worker asks before a chunk that is not streamed


def test_a_closed_connection_is_a_client_gone_without_the_door_marking_it() -> None:
    open_ = [True]
    out = Kept(Departure("the HTTP client", "10.0.0.5", lambda: open_[0]))
    out.chunk("r1", 0, b"one")
    open_[0] = False
    assert out.departure.gone
    with pytest.raises(ServiceError) as refused:
        out.chunk("r1", 1, b"two")
    assert refused.value.code == "client_gone" and out.kept == [b"one"]


def test_an_out_with_no_client_to_lose_is_never_refused() -> None:
    class Topic:  # as the MQTT door's out
        def chunk(self, request_id: str, seq: int, wav: bytes) -> None:
            pass

    check_client(Topic())

"""agent/wyoming/text_stream.py in process, against a stand-in for ``Speech``: sentences spoken in
the order written, with the stream's voice; after a refusal nothing more of that stream; text with
no sentence end spoken once it passes the limit (not at it); the sentences still queued counted
when the connection ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from agent.voices.picks import VoicePick
from agent.wyoming.text_stream import TextStream

PICK = VoicePick(profile="kitchen", provider="piper", voice="en_US-joe-medium")


class FakeSpeech:
    """Says what it is given; ``refuse`` answers False (its error event written) for those texts."""

    def __init__(self, refuse: tuple[str, ...] = (), hold: asyncio.Future[None] | None = None) -> None:
        self.said: list[tuple[str, Any]] = []
        self.refuse = refuse
        self.hold = hold
        self.cancelled = False

    async def say(self, text: str, pick: VoicePick) -> bool:
        self.said.append((text, pick))
        if self.hold is not None:
            try:
                await self.hold
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return text not in self.refuse


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 10))


def test_sentences_are_spoken_in_order_with_the_stream_s_voice_and_the_rest_at_the_end() -> None:
    speech = FakeSpeech()

    async def go() -> None:
        stream = TextStream(speech, PICK, 100)  # type: ignore[arg-type]
        assert "wyoming text stream" in {task.get_name() for task in asyncio.all_tasks()}  # named in a dump of tasks
        stream.add("One here. Tw")
        stream.add("o here! Three")
        await stream.finish()

    run(go)
    assert speech.said == [("One here.", PICK), ("Two here!", PICK), ("Three", PICK)]


def test_nothing_left_at_the_end_speaks_nothing_more() -> None:
    speech = FakeSpeech()

    async def go() -> None:
        stream = TextStream(speech, PICK, 100)  # type: ignore[arg-type]
        stream.add("One here. Two here.")
        await stream.finish()

    run(go)
    assert [text for text, _ in speech.said] == ["One here.", "Two here."]


def test_after_a_refusal_the_rest_of_the_stream_is_not_spoken() -> None:
    speech = FakeSpeech(refuse=("Two here.",))

    async def go() -> None:
        stream = TextStream(speech, PICK, 100)  # type: ignore[arg-type]
        stream.add("One here. Two here. Three here. Four")
        await stream.finish()  # still ends

    run(go)
    assert [text for text, _ in speech.said] == ["One here.", "Two here."]


def test_text_without_a_sentence_end_is_spoken_once_it_passes_the_limit_not_at_it() -> None:
    async def queued(limit: int, *chunks: str) -> int:
        stream = TextStream(FakeSpeech(), PICK, limit)  # type: ignore[arg-type]
        for chunk in chunks:
            stream.add(chunk)
        return stream.cancel()  # the speaking task has not run yet: what was queued is counted

    assert run(lambda: queued(10, "abcdefghij")) == 0  # 10 waiting, limit 10: it waits for more
    assert run(lambda: queued(9, "abcdefghij")) == 1  # 10 waiting, limit 9: spoken as it is
    assert run(lambda: queued(9, "abcde", "fghij")) == 1  # counted across chunks
    assert run(lambda: queued(9, "abcdefghij", "kl")) == 1  # the cut text is gone from what waits


def test_the_cut_text_is_spoken_and_what_follows_starts_afresh() -> None:
    speech = FakeSpeech()

    async def go() -> None:
        stream = TextStream(speech, PICK, 5)  # type: ignore[arg-type]
        stream.add("abcdefgh")
        stream.add("ij. Next")
        await stream.finish()

    run(go)
    assert [text for text, _ in speech.said] == ["abcdefgh", "ij.", "Next"]


def test_the_end_of_the_connection_drops_the_queued_sentences_and_stops_the_one_spoken() -> None:
    async def go() -> tuple[int, FakeSpeech]:
        speech = FakeSpeech(hold=asyncio.get_running_loop().create_future())
        stream = TextStream(speech, PICK, 100)  # type: ignore[arg-type]
        stream.add("One here. Two here. Three here. Four")
        while not speech.said:  # the first sentence is being spoken
            await asyncio.sleep(0)
        dropped = stream.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        return dropped, speech

    dropped, speech = run(go)
    assert dropped == 2 and speech.cancelled  # Two, Three queued; Four not yet a sentence
    assert [text for text, _ in speech.said] == ["One here."]


def test_the_end_marker_is_not_counted_as_a_dropped_sentence() -> None:
    async def go() -> int:
        speech = FakeSpeech(hold=asyncio.get_running_loop().create_future())
        stream = TextStream(speech, PICK, 100)  # type: ignore[arg-type]
        stream.add("One here. Two here.")
        while not speech.said:
            await asyncio.sleep(0)
        finishing = asyncio.ensure_future(stream.finish())  # queues the rest and the end marker
        await asyncio.sleep(0)
        dropped = stream.cancel()
        finishing.cancel()
        return dropped

    assert run(go) == 1  # "Two here.", not the marker

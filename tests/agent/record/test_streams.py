"""The stream inbox, where frames wait for the stream thread: bounded in bytes (2000 frames of
256 KiB once held 392 MB), each dropped frame told as a `stream.error`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.events import EventBus
from agent.layout import Layout
from agent.record.streams import StreamSessions

LIMIT = 100
NEVER_STARTED = "frame for a session that was never started (send .../start first)"


class SlowLayout(Layout):
    """The stream thread asks whether the profile exists first: here it waits at a gate there,
    so frames pile up in the inbox as they would behind a busy thread."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = False

    def exists(self, name: str) -> bool:
        self.entered.set()
        assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("a bug in the stream thread")
        return super().exists(name)


class Rig:
    def __init__(self, home: Path) -> None:
        (home / "profiles" / "default").mkdir(parents=True)
        self.layout = SlowLayout(home)
        self.errors: list[str] = []
        self.told_to: list[tuple[str, str]] = []  # (profile, session) of each error
        self.told = threading.Condition()
        events = EventBus()
        events.listen(self._event)
        self.streams = StreamSessions(self.layout, None, events, {}, LIMIT)  # type: ignore[arg-type]

    def _event(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        if name == "stream.error":
            with self.told:
                self.errors.append(data["error"])
                self.told_to.append((profile, data["session"]))
                self.told.notify_all()

    def frame(self, size: int) -> None:
        self.streams.on_stream("default", "s1", "frame", b"\0" * size)

    def blocked_on(self, size: int) -> None:
        """A frame of ``size`` bytes that the stream thread holds until the gate opens."""
        self.layout.gate.clear()
        self.layout.entered = threading.Event()
        self.frame(size)
        assert self.layout.entered.wait(10)

    def handled(self, count: int) -> list[str]:
        """Open the gate and wait until ``count`` errors were told in all."""
        self.layout.gate.set()
        deadline = time.monotonic() + 10
        with self.told:
            while len(self.errors) < count:
                assert self.told.wait(deadline - time.monotonic()), self.errors
            return list(self.errors)


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.layout.gate.set()
    made.streams.stop()


def test_frames_up_to_the_byte_bound_wait_one_byte_more_is_dropped(rig: Rig) -> None:
    rig.blocked_on(40)
    rig.frame(LIMIT - 40)  # exactly at the bound: waits
    rig.frame(1)  # one byte over: dropped at once, and told
    assert rig.errors == [f"stream input is backed up ({LIMIT} bytes waiting, at most {LIMIT}); frames dropped"]
    assert rig.handled(3)[1:] == [NEVER_STARTED] * 2  # the two that waited were handled


def test_a_dropped_frame_is_told_to_its_profile_and_session(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.blocked_on(LIMIT)
    rig.streams.on_stream("default", "s2", "frame", b"\0")  # over the bytes
    monkeypatch.setattr(rig.streams._inbox_bytes, "limit", 10 * LIMIT)
    monkeypatch.setattr(rig.streams._inbox, "maxsize", 1)  # the one the thread holds is out of the queue
    rig.streams.on_stream("default", "s3", "frame", b"\0")
    rig.streams.on_stream("default", "s4", "frame", b"\0")  # over the count
    assert rig.told_to[:2] == [("default", "s2"), ("default", "s4")]
    assert rig.errors[1] == "stream input is backed up; frames dropped"


def test_the_bytes_go_back_as_frames_are_handled(rig: Rig) -> None:
    rig.blocked_on(40)
    rig.frame(LIMIT - 40)
    rig.handled(2)
    rig.blocked_on(40)  # nothing of the first two is held any more
    rig.frame(LIMIT - 40)
    assert rig.handled(4) == [NEVER_STARTED] * 4


def test_the_bytes_go_back_when_handling_a_frame_fails(rig: Rig) -> None:
    rig.layout.fail = True
    rig.blocked_on(LIMIT)
    assert rig.handled(1) == ["internal error while processing the stream"]
    rig.layout.fail = False
    rig.blocked_on(40)
    rig.frame(LIMIT - 40)
    assert rig.handled(3)[1:] == [NEVER_STARTED] * 2


def test_hermes_frames_share_the_bound(tmp_path: Path) -> None:
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    layout = SlowLayout(tmp_path)
    errors: list[str] = []
    events = EventBus()
    events.listen(lambda profile, name, data, when: errors.append(data["error"]) if name == "stream.error" else None)
    streams = StreamSessions(layout, None, events, {"porch": "default"}, LIMIT)  # type: ignore[arg-type]
    try:
        streams.on_hermes_frame("porch", b"\0" * LIMIT)
        assert layout.entered.wait(10)
        streams.on_hermes_frame("porch", b"\0")
        assert errors == [f"stream input is backed up ({LIMIT} bytes waiting, at most {LIMIT}); frames dropped"]
    finally:
        layout.gate.set()
        streams.stop()


def test_a_frame_dropped_for_the_count_holds_no_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent.record.streams.MAX_INBOX_ITEMS", 1)
    rig = Rig(tmp_path)
    try:
        rig.blocked_on(10)
        rig.frame(10)  # the inbox of one is full
        rig.frame(10)
        assert rig.errors == ["stream input is backed up; frames dropped"]
        rig.handled(3)
        rig.blocked_on(40)  # nothing of the dropped one is held: 40 + 60 fit
        rig.frame(LIMIT - 40)
        assert rig.handled(5)[3:] == [NEVER_STARTED] * 2
    finally:
        rig.layout.gate.set()
        rig.streams.stop()

"""Each rule of the stream sessions (agent/record/streams.py), in-process: session names, starts,
frame sizes, the rate frames are fed at, what is scored with which source and transcript, the
agent's own speech, a Hermes site's transcripts paired with its utterances, idle and pairing
timeouts, and what stop lets go of.

The stream thread runs as in the agent, with two stand-ins: the VAD (a segmenter that cuts the
utterances a test queued and counts what it was fed) and the clock (moved by the test). A test
waits for the thread with `sync`, a message the thread answers with an error of its own."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

import agent.record.streams as streams_module
from agent.events import EventBus
from agent.layout import Layout
from agent.record.echo import OwnSpeech
from agent.record.streams import StreamSessions
from agent.record.vad import Utterance, VadOptions

NEVER_STARTED = "frame for a session that was never started (send .../start first)"
NOT_PLAIN = "unknown profile or session name that is not a plain identifier"
OWN_VOICE = "recorded while the agent was speaking: its own voice, heard back"
SITES = {"porch": "default", "deck": "default", "den-sat": "den"}


def utterance(seconds: float) -> Utterance:
    return Utterance(np.zeros(round(16000 * seconds), np.float32), np.ones(10, bool), 0.0, 320)


def pcm(samples: int, value: int = 1000) -> bytes:
    return np.full(samples, value, "<i2").tobytes()


def wav(samples: int, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.full(samples, 0.1, np.float32), rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


class Clock:
    """The module's `time`: only `monotonic`, which the test moves (whole seconds: exact floats)."""

    def __init__(self) -> None:
        self.now = float(int(time.monotonic()))  # a session that was never fed was last fed at its start, on the real clock

    def monotonic(self) -> float:
        return self.now


class FakeSegmenter:
    """The VAD's stand-in: cuts what the test queued (at the next feed, or at the flush)."""

    def __init__(self, options: VadOptions, cuts: deque[Utterance], at_flush: deque[Utterance]) -> None:
        self.options = options
        self.fed: list[np.ndarray] = []
        self._cuts, self._at_flush = cuts, at_flush

    @property
    def samples(self) -> int:
        return sum(len(s) for s in self.fed)

    def feed(self, samples: np.ndarray) -> Iterator[Utterance]:
        self.fed.append(np.asarray(samples))
        while self._cuts:
            yield self._cuts.popleft()

    def flush(self) -> Iterator[Utterance]:
        while self._at_flush:
            yield self._at_flush.popleft()


class FakeRecords:
    """The record service as the stream thread uses it."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, list[float], str, str | None]] = []
        self.accept = True
        self.drop_own = {"default", "den"}  # the profiles that drop the agent's own speech
        self.asked: list[str] = []
        self.options = VadOptions(frame_ms=20, hangover_ms=200)

    def vad_options(self, profile: str) -> VadOptions:
        self.asked.append(profile)
        return self.options

    def drops_own_speech(self, profile: str) -> bool:
        return profile in self.drop_own

    def submit_utterances(self, profile: str, utterances: list[Utterance], source: str, transcript: str | None = None) -> bool:
        self.submitted.append((profile, [u.seconds for u in utterances], source, transcript))
        return self.accept


class Rig:
    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch, own_clock: bool = True) -> None:
        for profile in ("default", "den"):
            (home / "profiles" / profile).mkdir(parents=True)
        self.clock = Clock()
        monkeypatch.setattr(streams_module, "time", self.clock)
        self.cuts: deque[Utterance] = deque()
        self.at_flush: deque[Utterance] = deque()
        self.segmenters: list[FakeSegmenter] = []
        monkeypatch.setattr(streams_module, "Segmenter", self._segmenter)
        self.records = FakeRecords()
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self._told = threading.Condition()
        self._syncs = 0
        self.bus = EventBus()
        self.bus.listen(self._event)
        self.streams = StreamSessions(Layout(home), self.records, self.bus, SITES, 1 << 24)  # type: ignore[arg-type]
        if own_clock:
            self.streams.own_speech = OwnSpeech(self.clock.monotonic)

    def _segmenter(self, options: VadOptions) -> FakeSegmenter:
        made = FakeSegmenter(options, self.cuts, self.at_flush)
        self.segmenters.append(made)
        return made

    def _event(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        with self._told:
            self.events.append((profile, name, data))
            self._told.notify_all()

    def sync(self) -> None:
        """Wait until the stream thread has handled everything sent before."""
        self._syncs += 1
        mark = ("default", "stream.error", {"session": f"sync{self._syncs}", "error": "unknown stream message 'sync' (start, frame or stop)"})
        self.streams.on_stream("default", f"sync{self._syncs}", "sync", b"")
        deadline = time.monotonic() + 10
        with self._told:
            while mark not in self.events:
                assert self._told.wait(deadline - time.monotonic()), self.events
            self.events.remove(mark)

    def at(self, seconds: float) -> None:
        """Move the clock to ``seconds`` after the start once what was sent is handled, and let the
        thread's idle check run (it runs once the clock moved a second or more)."""
        self.sync()
        self.clock.now = self.start_time + seconds
        self.sync()
        self.sync()

    start_time = 0.0

    def send(self, session: str, kind: str, payload: bytes = b"", profile: str = "default") -> None:
        self.streams.on_stream(profile, session, kind, payload)

    def told(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        with self._told:
            return [(profile, data) for profile, event, data in self.events if event == name]

    def errors(self) -> list[str]:
        return [data["error"] for _, data in self.told("stream.error")]

    def names(self) -> list[str]:
        with self._told:
            return [event for _, event, _ in self.events]

    def cut(self, *seconds: float) -> None:
        self.cuts.extend(utterance(s) for s in seconds)

    def frame(self, session: str, *cut: float, profile: str = "default") -> None:
        """A frame of a stream, which cuts utterances of ``cut`` seconds; handled on return."""
        self.cut(*cut)
        self.send(session, "frame", pcm(160), profile)
        self.sync()

    def site_frame(self, site: str, *cut: float) -> None:
        """A Hermes site's frame (a WAV), which cuts utterances of ``cut`` seconds; handled on return."""
        self.cut(*cut)
        self.streams.on_hermes_frame(site, wav(160))
        self.sync()

    def heard(self, event: str, text: str = "", site: str = "porch") -> None:
        self.streams.on_hermes_asr(site, event, text)


@pytest.fixture()
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    made = Rig(tmp_path, monkeypatch)
    made.start_time = made.clock.now
    yield made
    made.streams.stop()


# -- names, starts and stops ----------------------------------------------------------------

def test_a_session_name_that_is_not_plain_or_a_profile_that_does_not_exist_is_refused(rig: Rig) -> None:
    rig.send("../s1", "start")
    rig.send("s1", "start", profile="nobody")
    rig.send("s1 ", "start")
    rig.sync()
    assert rig.told("stream.error") == [
        ("default", {"session": "../s1", "error": NOT_PLAIN}),
        ("nobody", {"session": "s1", "error": NOT_PLAIN}),
        ("default", {"session": "s1 ", "error": NOT_PLAIN}),
    ]
    assert rig.told("stream.started") == [] and rig.segmenters == []


def test_an_empty_start_opens_a_16_khz_session_named_after_itself(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.send("s2", "start", b" \n ", profile="den")
    rig.sync()
    assert rig.told("stream.started") == [("default", {"session": "s1", "sample_rate": 16000}),
                                         ("den", {"session": "s2", "sample_rate": 16000})]
    assert rig.records.asked == ["default", "den"]  # each session cuts with its own profile's VAD
    assert [s.options for s in rig.segmenters] == [rig.records.options] * 2
    rig.frame("s2", 2.0, profile="den")
    assert rig.records.submitted == [("den", [2.0], "stream:s2", None)]


def test_a_start_names_its_rate_and_its_source(rig: Rig) -> None:
    rig.send("s1", "start", b'{"sample_rate": 48000, "source": "kitchen.mic:1"}')
    rig.sync()
    assert rig.told("stream.started") == [("default", {"session": "s1", "sample_rate": 48000})]
    rig.frame("s1", 1.5)
    assert rig.records.submitted == [("default", [1.5], "kitchen.mic:1", None)]


@pytest.mark.parametrize("body", [b"{", b"[1]", b'{"sample_rate": 7999}', b'{"sample_rate": 48001}',
                                  b'{"source": "a b"}', b'{"sample_rate": 16000, "channels": 2}', b"NaN"])
def test_a_bad_start_is_told_and_opens_nothing(rig: Rig, body: bytes) -> None:
    rig.send("s1", "start", body)
    rig.send("s1", "frame", pcm(10))
    rig.sync()
    [(profile, bad), frame] = rig.told("stream.error")
    assert profile == "default" and bad["session"] == "s1"
    assert bad["error"].startswith("bad start message: ") and len(bad["error"]) > len("bad start message: ")
    assert frame == ("default", {"session": "s1", "error": NEVER_STARTED})
    assert rig.told("stream.started") == []


@pytest.mark.parametrize("rate", [8000, 48000])
def test_the_rates_at_the_bounds_are_started(rig: Rig, rate: int) -> None:
    rig.send("s1", "start", b'{"sample_rate": %d}' % rate)
    rig.sync()
    assert rig.told("stream.started") == [("default", {"session": "s1", "sample_rate": rate})]


def test_starting_an_open_session_again_closes_it_first(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.send("s1", "frame", pcm(8000))
    rig.at_flush.append(utterance(1.25))
    rig.send("s1", "start", b'{"sample_rate": 8000}')
    rig.sync()
    assert rig.names() == ["stream.started", "stream.stopped", "stream.started"]
    assert rig.told("stream.stopped") == [("default", {"session": "s1", "seconds": 0.5})]
    assert rig.told("stream.started")[1] == ("default", {"session": "s1", "sample_rate": 8000})
    assert rig.records.submitted == [("default", [1.25], "stream:s1", None)]  # the open speech of the first
    assert len(rig.segmenters) == 2


def test_at_most_32_sessions_are_open_at_once(rig: Rig) -> None:
    for n in range(32):
        rig.send(f"s{n}", "start")
    rig.send("s32", "start")
    rig.sync()
    assert len(rig.told("stream.started")) == 32
    assert rig.told("stream.error") == [("default", {"session": "s32", "error": "too many open sessions (32)"})]
    rig.send("s5", "start")  # one that is open starts again: closed first, so it fits
    rig.send("s0", "stop")
    rig.send("s32", "start")
    rig.send("s33", "start")
    rig.sync()
    assert rig.names()[-5:] == ["stream.stopped", "stream.started", "stream.stopped", "stream.started", "stream.error"]
    assert rig.told("stream.started")[-1] == ("default", {"session": "s32", "sample_rate": 16000})
    assert rig.errors()[-1] == "too many open sessions (32)"


def test_a_stop_closes_its_session_once(rig: Rig) -> None:
    rig.send("s1", "stop")
    rig.send("s1", "start")
    rig.send("s1", "stop")
    rig.send("s1", "stop")
    rig.send("s1", "frame", pcm(2), profile="den")
    rig.sync()
    assert rig.told("stream.error") == [("default", {"session": "s1", "error": "stop for a session that was never started"})] * 2 + [
        ("den", {"session": "s1", "error": NEVER_STARTED})]
    assert rig.told("stream.stopped") == [("default", {"session": "s1", "seconds": 0.0})]


def test_an_unknown_message_is_told_with_its_name(rig: Rig) -> None:
    rig.send("s1", "pause")
    rig.send("s1", "asr-heard-x", b"hello")  # an unknown Hermes recognition event: nothing happens
    rig.sync()
    assert rig.told("stream.error") == [("default", {"session": "s1", "error": "unknown stream message 'pause' (start, frame or stop)"})]


# -- frames ---------------------------------------------------------------------------------

def test_frames_are_16_bit_pcm_of_at_most_256_kib(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.send("s1", "frame", pcm(128 * 1024))  # 256 KiB exactly
    rig.send("s1", "frame", pcm(128 * 1024 + 1))
    rig.send("s1", "frame", b"\0" * 3)
    rig.send("s1", "frame", b"")
    rig.sync()
    assert rig.told("stream.error") == [
        ("default", {"session": "s1", "error": "bad frame: 262146 bytes (16-bit PCM, at most 262144)"}),
        ("default", {"session": "s1", "error": "bad frame: 3 bytes (16-bit PCM, at most 262144)"})]
    assert [len(s) for s in rig.segmenters[0].fed] == [128 * 1024, 0]


def test_16_khz_frames_are_fed_as_they_are(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.send("s1", "frame", np.array([16384, -32768, 1], "<i2").tobytes())
    rig.sync()
    assert rig.segmenters[0].fed[0].tolist() == [0.5, -1.0, 1 / 32768]
    rig.send("s1", "stop")
    rig.sync()
    assert rig.segmenters[0].samples == 3  # nothing to resample: nothing added at the end


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_other_rates_are_fed_at_16_khz_the_last_of_it_at_the_stop(rig: Rig, rate: int) -> None:
    rig.send("s1", "start", b'{"sample_rate": %d}' % rate)
    for _ in range(10):
        rig.send("s1", "frame", pcm(rate // 10))
    rig.sync()
    assert 14000 < rig.segmenters[0].samples < 16000  # the resampler holds a little back...
    rig.cut(1.0)  # cut from what the resampler gave last
    rig.send("s1", "stop")
    rig.sync()
    assert rig.segmenters[0].samples == 16000  # ...until the stream ends
    assert rig.records.submitted == [("default", [1.0], "stream:s1", None)]
    assert rig.told("stream.stopped") == [("default", {"session": "s1", "seconds": 1.0})]


def test_stream_stopped_tells_the_seconds_sent_at_the_streams_rate(rig: Rig) -> None:
    rig.send("s1", "start", b'{"sample_rate": 8000}')
    rig.send("s1", "frame", pcm(600))
    rig.send("s1", "frame", pcm(400))  # 1000 samples at 8 kHz: 0.125 s
    rig.send("s1", "stop")
    rig.send("s2", "start", b'{"sample_rate": 48000}')
    for samples in (48000, 48000, 48000, 4800):
        rig.send("s2", "frame", pcm(samples))
    rig.send("s2", "stop")
    rig.sync()
    assert rig.told("stream.stopped") == [("default", {"session": "s1", "seconds": 0.12}),
                                         ("default", {"session": "s2", "seconds": 3.1})]


# -- scoring --------------------------------------------------------------------------------

def test_a_streams_utterances_are_scored_as_they_are_cut_without_a_transcript(rig: Rig) -> None:
    rig.send("s1", "start", b'{"source": "hall"}')
    rig.frame("s1")
    assert rig.records.submitted == []
    rig.frame("s1", 1.5, 2.5)  # two at once: one job
    rig.at_flush.append(utterance(3.0))
    rig.send("s1", "stop")
    rig.sync()
    assert rig.records.submitted == [("default", [1.5, 2.5], "hall", None), ("default", [3.0], "hall", None)]


def test_a_full_scoring_queue_is_told(rig: Rig) -> None:
    rig.records.accept = False
    rig.send("s1", "start")
    rig.frame("s1", 1.5)
    assert rig.told("stream.error") == [("default", {"session": "s1", "error": "scoring queue is full; utterances dropped"})]


# -- the agent's own speech -----------------------------------------------------------------

def test_an_utterance_spoken_while_the_agent_spoke_is_rejected(rig: Rig) -> None:
    rig.send("s1", "start", b'{"source": "hall"}')
    rig.frame("s1")
    rig.bus.emit("default", "speak.finished", {"audio_seconds": 3})  # its voice may be heard for 3 + 1 s
    rig.at(5)
    rig.cuts.append(Utterance(np.zeros(19761, np.float32), np.ones(3, bool), 0.0, 320))  # 1.2350625 s
    rig.frame("s1")  # it began 3.76 s after: in the window
    assert rig.told("sample.rejected") == [("default", {
        "request_id": None, "source": "hall", "duration": 1.235, "reasons": [OWN_VOICE]})]
    assert rig.records.submitted == []
    rig.at(6)
    rig.frame("s1", 2.0)  # began at 4 s: the window's end
    rig.frame("s1", 2.1)  # began at 3.9 s
    assert len(rig.told("sample.rejected")) == 2
    assert rig.records.submitted == [("default", [2.0], "hall", None)]


def test_speak_finished_without_its_seconds_is_the_tail_alone(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.frame("s1")
    rig.bus.emit("default", "speak.started", {"audio_seconds": 30})  # only a finished speak counts
    rig.bus.emit("default", "speak.finished", {"audio_seconds": None})
    rig.at(1)
    rig.frame("s1", 1.0)  # began at 0 s, while the tail of 1 s lasts
    rig.at(2)
    rig.frame("s1", 1.0)  # began at 1 s: after it
    assert len(rig.told("sample.rejected")) == 1
    assert rig.records.submitted == [("default", [1.0], "stream:s1", None)]


def test_the_agent_speaking_in_another_profile_or_a_profile_that_keeps_its_own_speech(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.bus.emit("den", "speak.finished", {"audio_seconds": 10})
    rig.frame("s1", 1.0)
    assert rig.records.submitted == [("default", [1.0], "stream:s1", None)]
    rig.records.drop_own = {"den"}
    rig.bus.emit("default", "speak.finished", {"audio_seconds": 10})
    rig.frame("s1", 2.0)
    assert rig.records.submitted[-1] == ("default", [2.0], "stream:s1", None)
    assert rig.told("sample.rejected") == []


def test_a_sites_playback_rejects_that_sites_utterances_only(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.send("porch", "start")  # a stream named like the site is no site
    rig.streams.own_speech.started("site:porch")  # the porch's speaker plays the agent's answer
    rig.frame("s1", 2.0)
    rig.frame("porch", 2.0)
    rig.site_frame("deck", 2.0)
    rig.site_frame("porch", 2.0)
    assert rig.told("sample.rejected") == [("default", {
        "request_id": None, "source": "hermes:porch", "duration": 2.0, "reasons": [OWN_VOICE]})]
    assert [s[2] for s in rig.records.submitted] == ["stream:s1", "stream:porch"]  # the deck's waits for its text
    rig.streams.own_speech.finished("site:porch")
    rig.bus.emit("default", "speak.finished", {"audio_seconds": 5})  # the profile's speech: every site's
    rig.site_frame("deck", 2.0)
    assert [data["source"] for _, data in rig.told("sample.rejected")] == ["hermes:porch", "hermes:deck"]


# -- Hermes frames ----------------------------------------------------------------------------

def test_a_site_that_is_not_recorded_is_ignored(rig: Rig) -> None:
    rig.streams.on_hermes_frame("attic", b"\0" * (300 * 1024))
    rig.streams.on_hermes_frame("attic", wav(160))
    rig.streams.on_hermes_asr("attic", "listening")
    rig.sync()
    assert rig.events == [] and rig.segmenters == []


def test_a_hermes_frame_is_a_wav_of_at_most_256_kib_and_two_seconds(rig: Rig) -> None:
    rig.streams.on_hermes_frame("porch", b"\0" * (256 * 1024 + 1))
    assert rig.told("stream.error") == [  # refused at once, on the MQTT thread
        ("default", {"session": "hermes-porch", "error": "Hermes frame of 262145 bytes dropped (at most 262144)"})]
    rig.streams.on_hermes_frame("porch", b"\0" * (256 * 1024))  # let in: not a WAV
    rig.streams.on_hermes_frame("porch", wav(32000))  # two seconds
    rig.streams.on_hermes_frame("porch", wav(32001))
    rig.sync()
    errors = rig.told("stream.error")
    assert len(errors) == 3
    assert errors[1][0] == "default" and errors[1][1]["session"] == "hermes-porch"
    assert errors[1][1]["error"].startswith("bad Hermes audio frame: not a ")
    assert errors[2] == ("default", {"session": "hermes-porch", "error": "bad Hermes audio frame: audio is 2 s long; the limit is 2 s"})
    assert rig.segmenters[0].samples == 32000


def test_a_sites_frames_make_one_session_at_their_rate(rig: Rig) -> None:
    rig.streams.on_hermes_frame("porch", wav(1600))
    rig.streams.on_hermes_frame("porch", wav(1600))
    rig.sync()
    assert len(rig.segmenters) == 1 and rig.segmenters[0].samples == 3200
    assert rig.told("stream.started") == []  # a satellite never says start
    rig.streams.on_hermes_frame("porch", wav(4410, 44100))  # the satellite's rate changed
    rig.sync()
    assert rig.told("stream.stopped") == [("default", {"session": "hermes-porch", "seconds": 0.2})]
    assert len(rig.segmenters) == 2 and 0 < rig.segmenters[1].samples < 1600
    rig.streams.on_hermes_frame("porch", wav(4410 * 9, 44100))
    rig.sync()
    assert len(rig.segmenters) == 2
    rig.streams.stop()
    assert rig.segmenters[1].samples == 16000
    assert rig.told("stream.stopped")[1] == ("default", {"session": "hermes-porch", "seconds": 1.0})


# -- a satellite's transcripts ----------------------------------------------------------------

def test_an_utterance_cut_while_the_site_listens_waits_for_its_text(rig: Rig) -> None:
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    assert rig.records.submitted == []
    rig.heard("heard", "  Turn on the light.  ")
    rig.sync()
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", "Turn on the light.")]


def test_a_text_that_comes_first_waits_five_seconds_for_its_utterance(rig: Rig) -> None:
    rig.heard("heard", " Lights on. ")
    rig.at(4)
    rig.site_frame("porch", 2.0)
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", "Lights on.")]
    rig.site_frame("porch", 1.5)  # the text was used: the next one waits for its own
    assert len(rig.records.submitted) == 1
    rig.heard("heard", "Lights off.")
    rig.sync()
    assert rig.records.submitted[1] == ("default", [1.5], "hermes:porch", "Lights off.")


def test_a_text_five_seconds_old_is_not_paired(rig: Rig) -> None:
    rig.heard("heard", "Lights on.")
    rig.at(5)
    rig.site_frame("porch", 2.0)
    assert rig.records.submitted == []
    rig.at(11)  # it waited more than five seconds for a text of its own: none came
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", None)]


def test_an_empty_text_lets_go_of_what_waits_without_a_transcript(rig: Rig) -> None:
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.heard("heard", "  ")  # nothing recognised
    rig.sync()
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", None)]
    rig.heard("heard", "")
    rig.site_frame("porch", 3.0)  # nor is an empty text one for the next
    assert len(rig.records.submitted) == 1
    rig.heard("heard", "Hello there.")
    rig.sync()
    assert rig.records.submitted[1] == ("default", [3.0], "hermes:porch", "Hello there.")


def test_the_text_of_a_hermes_message_that_is_not_utf_8_is_read_with_replacements(rig: Rig) -> None:
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.send("hermes-porch", "asr-heard", b"caf\xe9")
    rig.sync()
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", "caf\ufffd")]


def test_two_utterances_share_no_transcript(rig: Rig) -> None:
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.site_frame("porch", 1.5)
    rig.heard("heard", "Which one said it?")
    rig.heard("heard", "Lights on.")
    rig.site_frame("porch", 2.5, 3.5)  # a text that came first, and two cut at once
    assert rig.records.submitted == [("default", [2.0, 1.5], "hermes:porch", None),
                                     ("default", [2.5, 3.5], "hermes:porch", None)]


def test_listening_again_lets_go_of_what_waited_and_of_an_old_text(rig: Rig) -> None:
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.heard("listening")  # a new session: the last one's utterance will get no text
    rig.sync()
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", None)]
    rig.heard("heard", "Old words.")
    rig.heard("listening")
    rig.site_frame("porch", 1.5)
    assert len(rig.records.submitted) == 1  # not paired with the text of before


def test_each_site_pairs_its_own_texts(rig: Rig) -> None:
    rig.heard("heard", "Porch words.", site="porch")
    rig.site_frame("den-sat", 2.0)
    rig.heard("heard", "Den words.", site="den-sat")
    rig.sync()
    assert rig.records.submitted == [("den", [2.0], "hermes:den-sat", "Den words.")]


def test_what_waits_goes_without_text_five_seconds_after_listening_stopped(rig: Rig) -> None:
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.at(10)
    rig.at(30)
    assert rig.records.submitted == []  # it listens: the text may still come (up to 30 s)
    rig.heard("stopped")
    rig.at(35)
    assert rig.records.submitted == []
    rig.at(36)
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", None)]


def test_what_waits_while_the_site_listens_goes_after_30_seconds(rig: Rig) -> None:
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.at(10)
    rig.site_frame("porch", 1.0)  # more, later: the wait counts from the first
    rig.at(30)
    assert rig.records.submitted == []
    rig.at(31)
    assert rig.records.submitted == [("default", [2.0, 1.0], "hermes:porch", None)]


def test_a_held_utterance_without_listening_goes_after_five_seconds(rig: Rig) -> None:
    rig.site_frame("porch", 2.0)  # no listening said: its speech recognition is elsewhere, or off
    rig.at(5)
    assert rig.records.submitted == []
    rig.at(6)
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", None)]


# -- idle sessions and the stop ---------------------------------------------------------------

def test_a_session_without_frames_for_30_seconds_is_closed(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.send("s2", "start")
    rig.frame("s1")
    rig.frame("s2")
    rig.at(20)
    rig.frame("s1")  # a frame keeps it open
    rig.at(30)
    assert rig.told("stream.stopped") == []
    rig.at_flush.append(utterance(4.0))
    rig.at(30.5)
    assert rig.told("stream.stopped") == []  # idle by now, but the thread looks once a second, not at every message
    rig.at(31)  # a second after the last check
    assert rig.told("stream.stopped") == [("default", {"session": "s2", "seconds": 0.01})]
    assert rig.records.submitted == [("default", [4.0], "stream:s2", None)]  # its open speech kept
    rig.at(50)
    assert len(rig.told("stream.stopped")) == 1
    rig.at(51)
    assert [data["session"] for _, data in rig.told("stream.stopped")] == ["s2", "s1"]
    rig.send("s1", "frame", pcm(2))
    rig.sync()
    assert rig.errors() == [NEVER_STARTED]


def test_an_idle_session_is_closed_though_nothing_more_arrives(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.frame("s1")
    rig.clock.now += 31
    deadline = time.monotonic() + 10  # the thread looks at least once a second
    while not rig.told("stream.stopped"):
        assert time.monotonic() < deadline, rig.events
        time.sleep(0.05)


def test_stop_closes_every_session_and_lets_go_of_what_waits_for_a_text(rig: Rig) -> None:
    rig.send("s1", "start")
    rig.send("s2", "start", profile="den")
    rig.heard("listening", site="porch")
    rig.site_frame("porch", 2.0)
    rig.heard("listening", site="den-sat")
    rig.site_frame("den-sat", 1.5)
    rig.streams.stop()
    assert sorted((p, d["session"]) for p, d in rig.told("stream.stopped")) == [
        ("default", "hermes-porch"), ("default", "s1"), ("den", "hermes-den-sat"), ("den", "s2")]
    assert sorted(rig.records.submitted) == [("default", [2.0], "hermes:porch", None),
                                             ("den", [1.5], "hermes:den-sat", None)]


def test_after_its_text_a_site_no_longer_listens(rig: Rig) -> None:
    rig.heard("listening")
    rig.heard("heard", "Lights on.")  # nothing waited for it, and the site stopped listening
    rig.at(6)
    rig.site_frame("porch", 2.0)  # too late for that text: it waits five seconds for one of its own
    rig.at(11)
    assert rig.records.submitted == []
    rig.at(12)
    assert rig.records.submitted == [("default", [2.0], "hermes:porch", None)]


def test_a_message_that_fails_is_logged_and_told_and_the_thread_goes_on(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    def broken(profile: str) -> bool:
        raise RuntimeError("a bug")

    rig.records.drops_own_speech = broken  # type: ignore[method-assign]
    rig.send("s1", "start")
    with caplog.at_level(logging.ERROR, logger="agent.record.streams"):
        rig.frame("s1", 2.0)
    assert rig.told("stream.error") == [("default", {"session": "s1", "error": "internal error while processing the stream"})]
    assert [r.getMessage() for r in caplog.records if r.name == "agent.record.streams"] == ["stream default/s1 failed"]
    rig.send("s1", "stop")
    rig.sync()
    assert rig.told("stream.stopped") == [("default", {"session": "s1", "seconds": 0.01})]


def test_what_waited_and_found_the_scoring_queue_full_is_told_for_the_sites_session(rig: Rig) -> None:
    rig.records.accept = False
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.heard("listening")  # let go of, without a text
    rig.site_frame("porch", 1.5)
    rig.heard("heard", "Lights on.")  # let go of, with its text
    rig.heard("heard", "Lights off.")
    rig.site_frame("porch", 2.5)  # paired with a text that came first
    rig.heard("listening")
    rig.site_frame("porch", 3.0)
    rig.at(31)  # let go of after the wait
    assert rig.told("stream.error") == [("default", {"session": "hermes-porch", "error": "scoring queue is full; utterances dropped"})] * 4
    assert [s[3] for s in rig.records.submitted] == [None, "Lights on.", "Lights off.", None]


def test_the_agents_own_speech_is_heard_on_the_real_clock_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(tmp_path, monkeypatch, own_clock=False)
    try:
        rig.send("s1", "start")
        rig.bus.emit("default", "speak.finished", {"audio_seconds": 600})
        rig.frame("s1", 1.0)
        assert len(rig.told("sample.rejected")) == 1 and rig.records.submitted == []
    finally:
        rig.streams.stop()


def test_the_stream_thread_is_named_and_does_not_hold_the_agents_exit(rig: Rig) -> None:
    thread = rig.streams._thread
    assert (thread.name, thread.daemon) == ("streams", True)  # in a stack dump; a stuck cut cannot block exit


def test_what_waits_at_the_stop_and_finds_the_scoring_queue_full_is_told(rig: Rig) -> None:
    rig.records.accept = False
    rig.heard("listening")
    rig.site_frame("porch", 2.0)
    rig.streams.stop()
    assert rig.told("stream.error") == [("default", {"session": "hermes-porch", "error": "scoring queue is full; utterances dropped"})]

"""The record service with a stand-in analyser (the real one is a model process, tested end to
end in tests/e2e/test_record.py): what is kept, what is refused and why, what is told."""

from __future__ import annotations

from dataclasses import replace

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.record.analysis import Analysis, AnalysisFailed, AnalysisOptions, Scored
from agent.record.decode import AudioDecodeError
from agent.record.quality import Measurements
from agent.record.requests import RecordRequest
from agent.record.service import RecordService
from agent.record.vad import Utterance, VadOptions

RATE = 16000


def scored(score: float, seconds: float = 2.0, reasons: list[str] | None = None, value: float = 0.1,
           similarity: float | None = None, start: float = 0.0) -> Scored:
    samples = np.full(int(seconds * RATE), value, np.float32)
    m = Measurements(0.8, 25.0, 0.0, -20.0, seconds, None, similarity)
    return Scored(samples, start, score, {"snr": 80.0}, m, list(reasons or []), np.ones(4, np.float32) * value)


class FakeAnalyser:
    """Hands back what the test queued, and remembers what it was asked."""

    def __init__(self) -> None:
        self.results: list[Any] = []
        self.options: list[AnalysisOptions] = []
        self.embedding = np.array([1, 0, 0, 0], np.float32)
        self.gate: threading.Event | None = None
        self.entered = threading.Event()  # set once a job is being scored
        self.closed = False
        self.embedded: list[tuple[bytes, VadOptions]] = []
        self.utterances: list[list[Utterance]] = []
        self.wavs: list[bytes] = []

    def _next(self) -> Any:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    warmup: float | None = None  # what the next answer says of a (re)started analysis process

    def take_warmup(self) -> float | None:
        warmup, self.warmup = self.warmup, None
        return warmup

    def score_wav(self, data: bytes, options: AnalysisOptions) -> Analysis:
        self.options.append(options)
        self.wavs.append(data)
        return self._next()  # type: ignore[no-any-return]

    def score_utterances(self, utterances: list[Utterance], options: AnalysisOptions) -> list[Scored]:
        self.options.append(options)
        self.utterances.append(utterances)
        return self._next()  # type: ignore[no-any-return]

    def embed_wav(self, data: bytes, vad: VadOptions) -> np.ndarray:
        self.embedded.append((data, vad))
        return self.embedding

    def close(self) -> None:
        self.closed = True


class Bus:
    """What the service told: its events, and its state documents as they changed."""

    def __init__(self) -> None:
        self.told: list[tuple[str, dict[str, Any]]] = []
        self.states: list[tuple[str, dict[str, Any]]] = []

    def event(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        self.told.append((name, data) if profile == "default" else (f"{profile}:{name}", data))  # only this profile's count

    def state_changed(self, key: str, document: dict[str, Any]) -> None:
        self.states.append((key, document))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [data for told, data in self.told if told == name]

    def state(self, profile: str) -> dict[str, Any]:
        return [document for key, document in self.states if key == profile][-1]


@pytest.fixture()
def setup(tmp_path: Path) -> Iterator[tuple[RecordService, FakeAnalyser, Bus, Path]]:
    home = tmp_path
    (home / "profiles" / "default" / "etc").mkdir(parents=True)
    layout = Layout(home)
    bus = Bus()
    events, state = EventBus(), StateBoard()
    events.listen(bus.event)
    state.watch(bus.state_changed)
    analyser = FakeAnalyser()
    service = RecordService(layout, ConfigStore(layout, events), events, state, 2, analyser)
    yield service, analyser, bus, home
    service.stop()


def voice_json(home: Path, document: dict[str, Any]) -> None:
    (home / "profiles" / "default" / "etc" / "voice.json").write_text(json.dumps(document))


def record(service: RecordService, transcript: str | None = None, request_id: str = "r1") -> dict[str, Any]:
    request = RecordRequest(id=request_id, audio=b"RIFF", transcript=transcript)
    return service.submit("default", request).result(10)


def test_samples_at_the_threshold_are_kept_and_those_below_refused_with_the_reason(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results.append(Analysis(6.0, [scored(70.0), scored(69.9), scored(95.0, reasons=["clipped (2% ...)"])], []))
    result = record(service)
    assert [k["score"] for k in result["kept"]] == [70.0]
    assert [(r["score"], r["reasons"]) for r in result["rejected"]] == [
        (69.9, ["score 70 below the threshold 70"]), (95.0, ["clipped (2% ...)"])]
    assert [e["score"] for e in bus.events("sample.captured")] == [70.0]
    assert [e["score"] for e in bus.events("sample.rejected")] == [69.9, 95.0]
    samples = service.store("default").list()
    assert [s.id for s in samples] == [k["id"] for k in result["kept"]]
    assert (result["seconds"], result["utterances"], result["id"]) == (6.0, 3, "r1")


def test_the_threshold_comes_from_the_profiles_voice_json(setup: Any) -> None:
    service, analyser, bus, home = setup
    voice_json(home, {"record": {"threshold": 90}})
    service._configs.reload("default")
    analyser.results.append(Analysis(2.0, [scored(89.0)], []))
    result = record(service)
    assert result["kept"] == [] and "below the threshold 90" in result["rejected"][0]["reasons"][0]


def test_a_transcript_belongs_to_a_recording_of_one_utterance(setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    service, analyser, bus, home = setup
    analyser.results += [Analysis(2.0, [scored(80.0)], []), Analysis(4.0, [scored(80.0), scored(81.0)], []),
                         Analysis(4.0, [scored(80.0), scored(81.0)], [])]
    caplog.set_level("INFO")
    one = record(service, transcript="Hello there.", request_id="one")
    record(service, request_id="untold")  # two utterances and no transcript: nothing to say
    assert "transcript was not stored" not in caplog.text
    two = record(service, transcript="Hello there. General Kenobi.", request_id="two")
    assert "recording two held 2 utterances; its transcript was not stored" in caplog.text
    store = service.store("default")
    assert store.get(one["kept"][0]["id"]).transcript == "Hello there."  # type: ignore[union-attr]
    assert [store.get(k["id"]).transcript for k in two["kept"]] == [None, None]  # type: ignore[union-attr]


def test_the_owners_voice_is_the_reference_for_scoring(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results += [Analysis(2.0, [scored(80.0, value=0.2)], []), Analysis(2.0, [scored(80.0)], [])]
    record(service)
    assert analyser.options[0].reference is None  # nobody enrolled, nothing kept yet
    record(service)
    np.testing.assert_allclose(analyser.options[1].reference, np.ones(4) * 0.2)  # the kept sample's voice
    assert analyser.options[1].min_similarity == 0.7 and analyser.options[1].dnsmos is True


def test_enrolling_sets_the_reference_and_compares_it_with_kept_samples(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results.append(Analysis(2.0, [scored(80.0)], []))
    record(service)
    result = service.enroll("default", RecordRequest(id="e1", audio=b"RIFF")).result(10)
    assert result == {"id": "e1", "enrolled": True, "similarity_to_kept_samples": 0.5}
    kind, embedding, _ = service.store("default").speaker()  # type: ignore[misc]
    assert kind == "enrolled" and embedding.tolist() == [1, 0, 0, 0]
    assert bus.events("speaker.enrolled") == [{"request_id": "e1"}]


def test_no_speech_says_what_was_heard(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results.append(Analysis(3.5, [], [(0.4, "shorter than 1 s")]))
    with pytest.raises(ServiceError) as refused:
        record(service)
    assert refused.value.code == "no_speech"
    assert str(refused.value) == "no usable speech in 3.5 s of audio (1 segment(s) shorter than 1 s)"
    assert bus.events("sample.rejected")[-1]["reasons"] == [str(refused.value)]


def test_audio_that_cannot_be_decoded_is_invalid_audio(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results.append(AudioDecodeError("not a readable WAV file"))
    with pytest.raises(ServiceError) as refused:
        record(service)
    assert (refused.value.code, str(refused.value)) == ("invalid_audio", "not a readable WAV file")
    assert bus.events("sample.rejected")[-1]["reasons"] == ["not a readable WAV file"]


def test_analysis_failures_keep_their_code_and_the_service_goes_on(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results += [AnalysisFailed("analysis_failed", "the analysis process died"), Analysis(2.0, [scored(80.0)], [])]
    with pytest.raises(ServiceError) as refused:
        record(service)
    assert (refused.value.code, str(refused.value)) == ("analysis_failed", "the analysis process died")
    assert record(service)["kept"]


def test_recording_can_be_switched_off_per_profile(setup: Any) -> None:
    service, analyser, bus, home = setup
    voice_json(home, {"record": {"enabled": False}})
    service._configs.reload("default")
    with pytest.raises(ServiceError) as refused:
        service.submit("default", RecordRequest(audio=b"RIFF"))
    assert refused.value.code == "record_disabled"
    assert str(refused.value) == "recording is disabled for profile 'default' (record.enabled)"


def test_a_full_queue_is_busy_not_unbounded(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.gate = threading.Event()
    analyser.results += [Analysis(2.0, [scored(80.0)], []) for _ in range(3)]
    futures: list[Future[dict[str, Any]]] = [service.submit("default", RecordRequest(audio=b"RIFF"))]
    assert analyser.entered.wait(10)
    futures += [service.submit("default", RecordRequest(audio=b"RIFF")) for _ in range(2)]
    with pytest.raises(ServiceError) as refused:  # one being scored, two waiting: the queue holds two
        for _ in range(2):
            futures.append(service.submit("default", RecordRequest(audio=b"RIFF")))
    assert (refused.value.code, str(refused.value)) == ("busy", "too many recordings are waiting to be scored; try again later")
    assert service.submit_utterances("default", [], "stream") is False
    analyser.gate.set()
    assert all(f.result(10)["kept"] for f in futures)


def test_readiness_and_the_sovits_reference_follow_kept_samples(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results.append(Analysis(7.0, [scored(85.0, seconds=7.0)], []))
    record(service, transcript="A seven second sentence for the reference.")
    state = bus.state("default")
    assert state["samples"] == 1 and state["readiness"]["sovits"]["ready"] is True
    assert state["sample_minutes"] == round(7.0 / 60, 2)  # the kept audio, for Home Assistant's sensor
    assert state["readiness"]["rvc"]["ready"] is False
    reference = home / "profiles" / "default" / "out" / "voices" / "sovits-reference" / "default"
    assert [p.suffix for p in sorted(reference.iterdir())] == [".txt", ".wav"]
    [kept] = service.store("default").list()
    assert bus.events("sovits.reference") == [{"sample": kept.id, "score": 85.0, "speaker": "default"}]


def test_stopping_answers_what_still_waits(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.gate = threading.Event()
    analyser.results += [Analysis(2.0, [scored(80.0)], []), Analysis(2.0, [scored(80.0)], [])]
    first = service.submit("default", RecordRequest(audio=b"RIFF"))
    assert analyser.entered.wait(10)
    waiting = service.submit("default", RecordRequest(audio=b"RIFF"))
    threading.Timer(0.2, analyser.gate.set).start()
    service.stop()
    assert first.result(10)["kept"]
    with pytest.raises(ServiceError) as refused:
        waiting.result(10)
    assert (refused.value.code, str(refused.value)) == ("shutting_down", "the agent is stopping") and analyser.closed


def test_audio_found_without_its_row_is_scored_again(setup: Any) -> None:
    service, analyser, bus, home = setup
    store = service.store("default")
    analyser.results += [Analysis(2.0, [scored(80.0)], []), Analysis(2.0, [scored(80.0)], [])]
    ids = [record(service, request_id=f"r{n}")["kept"][0]["id"] for n in range(2)]
    store.close()
    (home / "profiles" / "default" / "out" / "voice-agent.db").unlink()  # the database is lost
    with service._lock:
        service._stores.clear()
    analyser.results += [Analysis(2.0, [scored(85.0)], []), Analysis(2.0, [scored(10.0)], [])]
    reopened = service.store("default")  # the audio waits in orphans/, nothing deleted
    assert sorted(p.stem for p in reopened.orphans()) == sorted(ids)
    deadline = time.monotonic() + 10
    while len(bus.events("sample.reimported")) < 2:
        assert time.monotonic() < deadline, bus.told
        time.sleep(0.05)
    outcomes = bus.events("sample.reimported")
    assert [bool(o["kept"]) for o in outcomes] == [True, False]
    assert outcomes[1]["refused"] == ["score 10 below the threshold 70"]
    assert [s.id for s in reopened.list()] == outcomes[0]["kept"] and reopened.orphans() == []
    refused = home / "profiles" / "default" / "out" / "voices" / "samples" / "orphans" / "refused"
    assert [p.name for p in refused.iterdir()] == [outcomes[1]["file"]]  # kept on disk, not scored again


def test_beyond_max_samples_the_lowest_scores_go_and_an_event_says_which(setup: Any) -> None:
    service, analyser, bus, home = setup
    voice_json(home, {"record": {"keep": {"maxSamples": 2}}})
    analyser.results.append(Analysis(4.0, [scored(80.0), scored(90.0)], []))
    record(service)
    assert bus.events("samples.pruned") == []  # at the cap: nothing goes
    analyser.results.append(Analysis(4.0, [scored(85.0), scored(75.0)], []))
    kept = record(service, request_id="r2")["kept"]
    store = service.store("default")
    assert sorted(s.score for s in store.list()) == [85.0, 90.0]
    pruned = bus.events("samples.pruned")
    assert len(pruned) == 1 and len(pruned[0]["samples"]) == 2
    assert kept[1]["id"] in [p["id"] for p in pruned[0]["samples"]]  # the new 75 went too
    assert all("among the lowest" in p["reason"] for p in pruned[0]["samples"])
    assert len(list((home / "profiles" / "default" / "out" / "voices" / "samples").glob("*.wav"))) == 2
    assert bus.state("default")["samples"] == 2  # readiness counts what is left


def test_samples_older_than_max_days_go_when_new_ones_arrive(setup: Any) -> None:
    service, analyser, bus, home = setup
    voice_json(home, {"record": {"keep": {"maxDays": 1}}})
    analyser.results.append(Analysis(2.0, [scored(99.0)], []))
    old = record(service)["kept"][0]["id"]
    store = service.store("default")
    with store._transaction() as db:  # two days ago
        db.execute("UPDATE samples SET created = created - 172800 WHERE id = ?", (old,))
    analyser.results.append(Analysis(2.0, [scored(71.0)], []))
    new = record(service, request_id="r2")["kept"][0]["id"]
    assert [s.id for s in store.list()] == [new]
    assert bus.events("samples.pruned") == [{"samples": [{"id": old, "reason": "older than 1 days"}]}]


def test_a_recording_remembers_where_it_came_from(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results += [Analysis(2.0, [scored(80.0)], []), Analysis(2.0, [scored(80.0)], [])]
    plain = service.submit("default", RecordRequest(id="a", audio=b"RIFF")).result(10)
    named = service.submit("default", RecordRequest(id="b", audio=b"RIFF", source="chatbot")).result(10)
    store = service.store("default")
    assert store.get(plain["kept"][0]["id"]).source == "mqtt"  # type: ignore[union-attr]
    assert store.get(named["kept"][0]["id"]).source == "chatbot"  # type: ignore[union-attr]


def test_streamed_utterances_are_scored_and_told_as_events(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results.append([scored(88.0)])
    cut = [Utterance(np.zeros(RATE, np.float32), np.ones(50, bool), 0.0, 320)]
    assert service.submit_utterances("default", cut, "hermes:porch", transcript="turn on the light") is True
    deadline = time.monotonic() + 10
    while not bus.events("sample.captured"):
        assert time.monotonic() < deadline, bus.told
        time.sleep(0.02)
    assert analyser.utterances == [cut]
    [sample] = service.store("default").list()
    assert (sample.source, sample.transcript, sample.score) == ("hermes:porch", "turn on the light", 88.0)
    assert bus.events("sample.captured")[0]["id"] == sample.id


def test_the_profiles_vad_settings_reach_the_analysis(setup: Any) -> None:
    service, analyser, bus, home = setup
    voice_json(home, {"record": {"minSeconds": 2.0, "maxSeconds": 12.0,
                                 "vad": {"frameMs": 20, "aggressiveness": 3, "hangoverMs": 450}}})
    analyser.results.append(Analysis(2.0, [scored(80.0)], []))
    record(service)
    assert analyser.options[0].vad == VadOptions(frame_ms=20, aggressiveness=3, hangover_ms=450,
                                                 min_seconds=2.0, max_seconds=12.0)
    service.enroll("default", RecordRequest(id="e", audio=b"RIFF-owner")).result(10)
    assert analyser.embedded == [(b"RIFF-owner", analyser.options[0].vad)]


def test_an_unexpected_failure_is_logged_with_its_recording(setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    service, analyser, bus, home = setup
    analyser.results += [RuntimeError("disk on fire"), AudioDecodeError("not a readable WAV file")]
    with pytest.raises(RuntimeError):
        record(service, request_id="boom")
    assert "recording boom failed" in caplog.text and "disk on fire" in caplog.text
    caplog.clear()
    with pytest.raises(ServiceError):
        record(service, request_id="refused")
    assert "refused" not in caplog.text  # a refusal is an answer, not a failure to log


def test_what_is_told_of_each_sample(setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    service, analyser, bus, home = setup
    good, low = scored(91.0, seconds=2.5, similarity=0.876, start=0.25), scored(40.0, seconds=1.25, start=3.1234)
    analyser.results.append(Analysis(5.12345, [good, low], []))
    caplog.set_level("INFO")
    result = service.submit("default", RecordRequest(id="told", audio=b"RIFF-told", transcript="two things")).result(10)
    assert analyser.wavs == [b"RIFF-told"]
    assert (result["id"], result["seconds"], result["utterances"]) == ("told", 5.123, 2)
    [captured] = bus.events("sample.captured")
    assert captured == {"request_id": "told", "score": 91.0, "components": {"snr": 80.0}, "duration": 2.5,
                        "start": 0.25, "speaker_similarity": 0.876, "id": result["kept"][0]["id"], "say": []}
    [rejected] = bus.events("sample.rejected")
    assert rejected == {"request_id": "told", "score": 40.0, "components": {"snr": 80.0}, "duration": 1.25,
                        "start": 3.123, "speaker_similarity": None, "reasons": ["score 40 below the threshold 70"],
                        "say": ["a low score"]}
    sample = service.store("default").get(captured["id"])
    assert sample is not None and sample.components == {"snr": 80.0} and sample.speaker_similarity == 0.876
    assert sample.measurements["snr_db"] == 25.0 and sample.transcript is None  # two utterances: whose words?
    assert "recording told held 2 utterances; its transcript was not stored" in caplog.text


def test_a_take_whose_words_are_not_its_transcript_is_kept_with_the_reason(setup: Any) -> None:
    """The words heard (in the analysis process) against the transcript: the verdict is stored
    with the sample and said in the answer; a take heard as its transcript is kept as it is."""
    service, analyser, bus, home = setup
    analyser.results.append(Analysis(3.0, [replace(scored(90.0), heard="my phone battery died on the way")], []))
    analyser.results.append(Analysis(3.0, [replace(scored(90.0), heard="the old clock in the whole stop at noon")], []))
    other = record(service, "The old clock in the hall stopped at noon.", "other")["kept"][0]
    true = record(service, "The old clock in the hall stopped at noon.", "true")["kept"][0]
    assert "the words heard differ" in other["transcript_mismatch"] and other["say"] == ["other words than the sentence"]
    assert true["transcript_mismatch"] is None and true["transcript_checked"] and true["say"] == []
    store = service.store("default")
    assert "word error rate" in (store.get(other["id"]) or pytest.fail()).transcript_mismatch
    assert store.transcripts() == ["The old clock in the hall stopped at noon."]  # only the true reading


def test_refusals_before_scoring_are_told_with_the_request(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results += [AudioDecodeError("not a readable WAV file"), Analysis(0.8, [], [])]
    for request_id in ("bad", "silent"):
        with pytest.raises(ServiceError):
            record(service, request_id=request_id)
    assert bus.events("sample.rejected") == [
        {"request_id": "bad", "reasons": ["not a readable WAV file"]},
        {"request_id": "silent", "reasons": ["no usable speech in 0.8 s of audio"]},
    ]


def test_streamed_audio_without_speech_says_how_long_it_was(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results.append([])
    cut = [Utterance(np.zeros(RATE * 3, np.float32), np.ones(150, bool), 0.0, 320)]
    assert service.submit_utterances("default", cut, "stream:kitchen")
    deadline = time.monotonic() + 10
    while not bus.events("sample.rejected"):
        assert time.monotonic() < deadline, bus.told
        time.sleep(0.02)
    [rejected] = bus.events("sample.rejected")
    assert rejected["reasons"] == ["no usable speech in 3.0 s of audio"]
    assert len(rejected["request_id"]) == 12 and analyser.options[0].vad == service.vad_options("default")


def test_one_store_per_profile_and_one_worker_named_for_the_logs(setup: Any) -> None:
    service, analyser, bus, home = setup
    assert service.store("default") is service.store("default")
    worker = [t for t in threading.enumerate() if t.name == "record"]
    assert worker and all(t.daemon for t in worker)
    analyser.results.append(Analysis(2.0, [scored(80.0)], []))
    generated = service.submit("default", RecordRequest(audio=b"RIFF")).result(10)["id"]
    assert len(generated) == 12 and bus.events("sample.captured")[0]["request_id"] == generated


def test_enrolling_without_kept_samples_and_with_bad_audio(setup: Any) -> None:
    service, analyser, bus, home = setup
    first = service.enroll("default", RecordRequest(id="e0", audio=b"RIFF")).result(10)
    assert first == {"id": "e0", "enrolled": True, "similarity_to_kept_samples": None}
    analyser.results.append(Analysis(2.0, [scored(80.0, value=0.3)], []))
    record(service)
    analyser.embedding = np.array([1, 1, 0, 0], np.float32)
    second = service.enroll("default", RecordRequest(id="e1", audio=b"RIFF")).result(10)
    assert second["similarity_to_kept_samples"] == 0.707  # cos 45 degrees, to 3 places
    assert bus.events("speaker.enrolled") == [{"request_id": "e0"}, {"request_id": "e1"}]

    def broken(data: bytes, vad: VadOptions) -> np.ndarray:
        raise AudioDecodeError("not a readable WAV file: truncated")

    analyser.embed_wav = broken  # type: ignore[method-assign]
    with pytest.raises(ServiceError) as refused:
        service.enroll("default", RecordRequest(id="e2", audio=b"RIFF")).result(10)
    assert (refused.value.code, str(refused.value)) == ("invalid_audio", "not a readable WAV file: truncated")


def test_pruning_is_logged_for_the_profile(setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    service, analyser, bus, home = setup
    voice_json(home, {"record": {"keep": {"maxSamples": 1}}})
    analyser.results.append(Analysis(6.0, [scored(80.0), scored(81.0), scored(82.0)], []))
    caplog.set_level("INFO")
    record(service)
    assert "pruned 2 sample(s) of default (record.keep)" in caplog.text


def test_an_orphan_is_scored_again_as_an_orphan(setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    service, analyser, bus, home = setup
    samples = home / "profiles" / "default" / "out" / "voices" / "samples"
    samples.mkdir(parents=True)
    (samples / "lost.wav").write_bytes(b"RIFF-lost")
    analyser.results += [AnalysisFailed("analysis_unavailable", "no DNSMOS models"), Analysis(2.0, [scored(88.0)], [])]
    store = service.store("default")  # moves lost.wav to orphans/, to be scored when idle
    deadline = time.monotonic() + 10
    while "cannot score the orphaned samples of default again: no DNSMOS models" not in caplog.text:
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.05)
    assert [p.name for p in store.orphans()] == ["lost.wav"]  # left be: scored at the next start
    with service._lock:
        service._orphaned.add("default")
    while not bus.events("sample.reimported"):
        assert time.monotonic() < deadline + 10, bus.told
        time.sleep(0.05)
    [event] = bus.events("sample.reimported")
    [sample] = store.list()
    assert event == {"file": "lost.wav", "kept": [sample.id], "refused": []}
    assert sample.source == "orphan" and analyser.wavs[-1] == b"RIFF-lost" and store.orphans() == []


def test_the_sovits_reference_is_not_rewritten_when_nothing_changed(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results += [Analysis(7.0, [scored(85.0, seconds=7.0)], []), Analysis(2.0, [scored(80.0)], [])]
    record(service, transcript="A seven second sentence for the reference.")
    assert record(service, request_id="r2")["kept"]  # kept, but no reference: 2 s, no transcript
    assert len(bus.events("sovits.reference")) == 1


def test_orphans_that_are_refused_all_stay_on_disk_with_the_reason(setup: Any) -> None:
    service, analyser, bus, home = setup
    samples = home / "profiles" / "default" / "out" / "voices" / "samples"
    samples.mkdir(parents=True)
    (samples / "a.wav").write_bytes(b"RIFF-a")
    (samples / "b.wav").write_bytes(b"RIFF-b")
    analyser.results += [AudioDecodeError("not a readable WAV file"), Analysis(2.0, [scored(10.0)], [])]
    store = service.store("default")
    deadline = time.monotonic() + 10
    while len(bus.events("sample.reimported")) < 2:
        assert time.monotonic() < deadline, bus.told
        time.sleep(0.05)
    told = bus.events("sample.reimported")  # in the order the orphans are found, not by name
    assert sorted(e["file"] for e in told) == ["a.wav", "b.wav"] and [e["kept"] for e in told] == [[], []]
    assert [e["refused"] for e in told] == [["not a readable WAV file"], ["score 10 below the threshold 70"]]
    refused = samples / "orphans" / "refused"
    assert sorted(p.read_bytes() for p in refused.iterdir()) == [b"RIFF-a", b"RIFF-b"] and store.orphans() == []


def test_orphans_that_cannot_be_scored_now_are_not_tried_again_until_asked(setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    service, analyser, bus, home = setup
    samples = home / "profiles" / "default" / "out" / "voices" / "samples"
    samples.mkdir(parents=True)
    (samples / "lost.wav").write_bytes(b"RIFF-lost")
    analyser.results += [AnalysisFailed("analysis_unavailable", "no DNSMOS models")] * 3
    service.store("default")
    deadline = time.monotonic() + 10
    while not analyser.wavs:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(2.5)  # two more idle turns of the worker (1 s each)
    assert len(analyser.wavs) == 1 and caplog.text.count("cannot score the orphaned samples") == 1


def test_the_first_answer_after_the_analysis_process_started_says_its_warmup(setup: Any) -> None:
    service, analyser, bus, home = setup
    analyser.results += [Analysis(2.0, [scored(80.0)], []), Analysis(2.0, [scored(80.0)], [])]
    analyser.warmup = 4.25  # the process was (re)started for this recording
    assert record(service, request_id="cold")["warmup_seconds"] == 4.25
    assert "warmup_seconds" not in record(service, request_id="warm")  # it was running: nothing to say

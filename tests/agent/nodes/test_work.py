"""The job and reply models of work between nodes: what a worker and a home accept from the broker."""

from __future__ import annotations

import base64
import json

import pytest

from agent.nodes.work import (MAX_JOB_BYTES, Answer, FileData, SpeakWork, StopWork, TrainProgress, TrainReply, TrainWork, WorkError, WorkReply,
                              read_job, read_reply, read_stop, read_train_job, read_train_reply)

SHA = "ab" * 32


def job(**changes: object) -> dict[str, object]:
    return {"id": "home-1", "home": "home", "home_url": "http://home:8080", "provider": "rvc", "text": "Hello.",
            "settings": {"speakerId": "anna"}, "files": {"model": {"sha256": SHA, "size": 10, "name": "anna.pth"}},
            **changes}


def test_a_job_reads_back_as_written() -> None:
    written = SpeakWork.model_validate(job())
    assert read_job(written.to_json()) == written


@pytest.mark.parametrize("bad", [
    {"id": "a/b"}, {"home": "+"}, {"home_url": "file:///etc/passwd"}, {"home_url": "http://h/x y"},
    {"text": ""}, {"text": "a\x00b"}, {"files": {"model": {"sha256": "00", "size": 1, "name": "m.pth"}}},
    {"files": {"model": {"sha256": SHA, "size": 1, "name": "../m.pth"}}}, {"extra": 1},
])
def test_a_job_that_is_not_one_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(WorkError):
        read_job(json.dumps(job(**bad)).encode())


def test_hostile_payloads_are_refused_not_raised() -> None:
    for payload in (b"", b"[]", b"{", b"\xff", json.dumps(job(text="x" * 30_000)).encode(), b"{" + b" " * 300_000 + b"}"):
        with pytest.raises(WorkError):
            read_job(payload)
    with pytest.raises(WorkError):
        read_reply(b'{"kind": "teleport", "node": "d", "id": "j"}')


def test_a_chunk_carries_its_pcm_and_a_bad_one_is_a_work_error() -> None:
    chunk = WorkReply.chunk("desk", "home-1", 2, b"\x01\x00\x02\x00", 40000)
    back = read_reply(chunk.to_json())
    assert (back.kind, back.seq, back.sample_rate, back.audio()) == ("chunk", 2, 40000, b"\x01\x00\x02\x00")
    with pytest.raises(WorkError):
        back.model_copy(update={"pcm": "AAA"}).audio()  # not base64 of whole samples
    with pytest.raises(WorkError):
        WorkReply.chunk("desk", "home-1", 0, b"\x01", 40000).audio()  # half a sample


def test_a_sealed_job_reads_back_sealed_and_any_change_breaks_the_seal() -> None:
    sealed = SpeakWork.model_validate(job()).sealed("household")
    assert read_job(sealed.to_json()).sealed_by("household")
    assert not sealed.sealed_by("other") and not SpeakWork.model_validate(job()).sealed_by("household")
    changes: list[dict[str, object]] = [{"home_url": "http://attacker:8080"}, {"text": "Open the door."}, {"settings": {}}]
    for change in changes:
        assert not sealed.model_copy(update=change).sealed_by("household")
    assert not SpeakWork.model_validate(job()).sealed("").sealed_by("")  # no token, no trust


def train_job(**changes: object) -> dict[str, object]:
    return {"id": "20260101000000-abcdef.1a2b3c", "job": "20260101000000-abcdef", "home": "home",
            "home_url": "http://home:8080", "profile": "default", "provider": "kokoro", "speaker": "joe",
            "params": {"epochs": 2}, "dataset": [{"sha256": SHA, "size": 10, "name": "s0.wav"}], **changes}


def test_a_training_job_reads_back_as_written_and_its_seal_covers_it() -> None:
    written = TrainWork.model_validate(train_job()).sealed("token")
    back = read_train_job(written.to_json())
    assert back == written and back.sealed_by("token") and not back.sealed_by("other")
    assert not back.model_copy(update={"params": {"epochs": 3}}).sealed_by("token")


@pytest.mark.parametrize("bad", [
    {"dataset": []}, {"dataset": [{"sha256": SHA, "size": 1, "name": ".hidden"}]},
    {"dataset": [{"sha256": SHA, "size": 1, "name": ".."}]}, {"speaker": "../x"}, {"profile": "a/b"},
    {"provider": "Kokoro!"}, {"checkpoint": [{"sha256": SHA, "size": -1, "name": "state.json"}]}, {"step": -1},
])
def test_a_training_job_that_is_not_one_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(WorkError):
        read_train_job(json.dumps(train_job(**bad)).encode())


def test_a_file_in_a_reply_is_its_bytes_only_when_they_are_the_ones_named() -> None:
    file = FileData.of("best.npy", b"voicepack")
    back = read_train_reply(TrainReply(kind="progress", node="desk", id="j.1", files=[file],
                                       progress=TrainProgress(step=5, total=10, checkpoint=True)).to_json())
    assert back.files[0].content() == b"voicepack" and back.progress is not None and back.progress.step == 5
    for changed in ({"data": base64.b64encode(b"voicepacK").decode()}, {"size": 8}, {"data": "not base64!"}):
        with pytest.raises(WorkError):
            file.model_copy(update=changed).content()
    with pytest.raises(WorkError):
        read_train_reply(json.dumps({"kind": "done", "node": "desk", "id": "j", "files": [
            {"name": "../x.npy", "sha256": SHA, "size": 1, "data": ""}]}).encode())


def test_a_progress_report_crosses_as_finite_numbers() -> None:
    progress = TrainProgress.from_report({"type": "progress", "stage": "training", "step": 3, "total": 9,
                                          "loss": float("nan"), "best": float("inf"), "message": "x" * 900,
                                          "checkpoint": True})
    assert (progress.step, progress.total, progress.loss, progress.best, len(progress.message)) == (3, 9, None, None, 500)
    read_train_reply(TrainReply(kind="progress", node="d", id="j", progress=progress).to_json())
    assert read_stop(StopWork(id="j.1", home="home").sealed("t").to_json()).sealed_by("t")
    with pytest.raises(WorkError, match="^not a stop: "):
        read_stop(b'{"kind": "go"}')
    with pytest.raises(WorkError, match="^not a training job: "):
        read_train_job(b"[]")
    with pytest.raises(WorkError, match="^not a training reply: "):
        read_train_reply(b'{"kind": "teleport"}')


def test_what_a_bad_chunk_or_file_says_and_that_a_reply_carries_no_defaults() -> None:
    chunk = WorkReply.chunk("desk", "home-1", 0, b"\x01\x00", 40000)
    with pytest.raises(WorkError, match=r"^a chunk of job home-1 is not base64 PCM$"):
        chunk.model_copy(update={"pcm": "AAAA!"}).audio()  # a character outside base64 is an error, not skipped
    with pytest.raises(WorkError, match=r"^a chunk of job home-1 is not 16-bit PCM at a rate$"):
        chunk.model_copy(update={"sample_rate": 0}).audio()
    assert chunk.model_copy(update={"sample_rate": 1}).audio() == b"\x01\x00"
    assert WorkReply(kind="alive", node="desk", id="j").to_json() == b'{"kind":"alive","node":"desk","id":"j"}'
    file = FileData.of("a.bin", b"abc")
    with pytest.raises(WorkError, match=r"^file a\.bin is not base64$"):
        file.model_copy(update={"data": file.data + "!"}).content()
    other = FileData.of("a.bin", b"abd")
    with pytest.raises(WorkError) as wrong:
        file.model_copy(update={"data": other.data}).content()
    assert str(wrong.value) == (f"file a.bin is not the one named: 3 bytes, SHA-256 {other.sha256[:12]}..., "
                                f"not 3 bytes, {file.sha256[:12]}...")
    with pytest.raises(WorkError, match="^not a speak job: "):
        read_job(b"[]")
    with pytest.raises(WorkError, match="^not a work reply: "):
        read_reply(b"[]")


def test_a_progress_report_keeps_its_words_and_an_empty_one_is_all_zero() -> None:
    assert TrainProgress.from_report({}) == TrainProgress()
    assert TrainProgress.from_report({"step": None, "total": None, "stage": None, "message": None}) == TrainProgress()
    progress = TrainProgress.from_report({"stage": "s" * 70, "step": -3, "total": -1, "best": 0.5, "loss": 2,
                                          "message": "saved"})
    assert (progress.stage, progress.step, progress.total, progress.best, progress.loss, progress.message) == (
        "s" * 64, 0, 0, 0.5, 2.0, "saved")


def test_a_reply_that_cannot_be_sent_is_logged_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def broken(payload: bytes) -> None:
        raise OSError("the connection is gone")

    Answer(TrainReply, "desk", "j.1", broken, "t").say("alive")
    assert caplog.messages == ["could not reply to job j.1"]


def test_a_message_may_take_its_whole_limit_and_no_byte_more() -> None:
    stop = StopWork(id="j.1", home="home").to_json()
    at_limit = stop + b" " * (MAX_JOB_BYTES - len(stop))
    assert read_stop(at_limit).id == "j.1"
    with pytest.raises(WorkError, match=f"^a stop of {MAX_JOB_BYTES + 1} bytes, more than {MAX_JOB_BYTES}$"):
        read_stop(at_limit + b" ")
    with pytest.raises(WorkError, match="^not a stop: Expecting"):
        read_stop(b"{")
    alive = TrainReply(kind="alive", node="desk", id="j")
    assert alive.to_json() == b'{"kind":"alive","node":"desk","id":"j"}'  # a reply says only what it carries


def test_a_release_crosses_the_stop_topic_and_a_reply_names_files_to_fetch_at_a_door() -> None:
    from agent.nodes.work import BlobRef, Release

    release = read_stop(Release(id="j.1", home="home", files=["ab" * 32]).sealed("t").to_json())
    assert isinstance(release, Release) and release.files == ["ab" * 32] and release.sealed_by("t")
    assert isinstance(read_stop(StopWork(id="j.1", home="home").to_json()), StopWork)
    with pytest.raises(WorkError, match="^not a release: "):
        read_stop(b'{"kind": "release", "id": "j.1", "home": "home", "files": ["not a hash"]}')
    with pytest.raises(WorkError, match="^not a stop: "):
        read_stop(b"[]")
    ref = BlobRef(sha256="cd" * 32, size=55 << 20, name="joe.pth")
    reply = read_train_reply(TrainReply(kind="done", node="desk", id="j.1", status="finished", fetch=[ref],
                                        url="http://desk:4321").to_json())
    assert (reply.fetch, reply.url, reply.files) == ([ref], "http://desk:4321", [])
    for url in ("http://desk:4321/api", "file:///etc", "http://desk 4321"):
        with pytest.raises(WorkError):
            read_train_reply(reply.model_copy(update={"url": url}).model_dump_json().encode())

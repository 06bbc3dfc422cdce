"""The job and reply models of work between nodes: what a worker and a home accept from the broker."""

from __future__ import annotations

import json

import pytest

from agent.nodes.work import SpeakWork, WorkError, WorkReply, read_job, read_reply

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

"""The resumable transfer (agent/transfer.py) in-process, each rule against a scripted server
answer (``urlopen`` replaced): the Range asked and the one answered (206, 200, 416), the caps
(the expected size, a limit, the disk room) at their boundaries, a body cut short, the minimum
rate after its grace, the redirects a download may follow, and the ``.part`` files a day old."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import __version__
from agent import transfer
from agent.errors import ServiceError
from agent.transfer import Fetch, Source, range_start, redirect_refusal, resume, stale_parts
from tests.voice_mirror import VoiceMirror

BODY = bytes(range(256)) * 4  # 1024 bytes, each offset's byte told apart from its neighbours'


def source(**changes: Any) -> Source:
    return Source(**{"url": "http://mirror.lan/x.bin", "code": "x_failed", "setting": "the X setting",
                     "full": "free some room", **changes})


class Answer:
    """One scripted response: a status, its headers, the body in the blocks given (an exception
    among them is raised at that read)."""

    def __init__(self, status: int, blocks: list[Any], headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.blocks = list(blocks)
        self.reads: list[int] = []
        self.closed = False

    def read1(self, size: int) -> bytes:
        self.reads.append(size)
        if not self.blocks:
            return b""
        block = self.blocks.pop(0)
        if isinstance(block, BaseException):
            raise block
        return block

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


class Server:
    """``transfer.urlopen`` replaced: each request kept (its headers), answered by the next answer
    (an ``HTTPError`` given is raised)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[urllib.request.Request] = []
        self.timeouts: list[float] = []
        self.sources: list[Source | None] = []

    def __call__(self, request: urllib.request.Request, timeout: float, source: Source | None = None) -> Any:
        self.requests.append(request)
        self.timeouts.append(timeout)
        self.sources.append(source)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def range(self, index: int = -1) -> str | None:
        return self.requests[index].get_header("Range")


@pytest.fixture()
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def install(*answers: Any) -> Server:
        server = Server(*answers)
        monkeypatch.setattr(transfer, "urlopen", server)
        return server
    yield install


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("http://mirror.lan/x.bin", code, "Nope", {}, None)  # type: ignore[arg-type]


def whole(body: bytes = BODY, length: bool = True) -> Answer:
    return Answer(200, [body], {"Content-Length": str(len(body))} if length else {})


def partial(start: int, body: bytes = BODY, told: int | None = None) -> Answer:
    first = start if told is None else told
    return Answer(206, [body[start:]], {"Content-Range": f"bytes {first}-{len(body) - 1}/{len(body)}",
                                        "Content-Length": str(len(body) - start)})


# What is asked

def test_a_fresh_download_asks_for_the_whole_file_plainly(serve: Any, tmp_path: Path) -> None:
    server = serve(whole())
    part = tmp_path / "x.part"
    seen: list[int] = []
    assert resume(source(headers={"Authorization": "Bearer t"}), part, "md5", size=len(BODY), progress=seen.append,
                  how=Fetch(timeout=7.5)) == md5(BODY)
    assert part.read_bytes() == BODY and seen == [len(BODY)]
    [request] = server.requests
    assert request.full_url == "http://mirror.lan/x.bin" and server.timeouts == [7.5]
    assert server.range() is None and request.get_header("Accept-encoding") == "identity"
    assert request.get_header("User-agent") == f"voice-agent/{__version__}"
    assert request.get_header("Authorization") == "Bearer t"


def test_a_part_is_resumed_from_its_length_and_the_digest_is_of_the_whole(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:100])
    server = serve(partial(100))
    seen: list[int] = []
    assert resume(source(), part, "sha256", size=len(BODY), progress=seen.append) == hashlib.sha256(BODY).hexdigest()
    assert server.range() == "bytes=100-" and part.read_bytes() == BODY
    assert seen == [len(BODY)]  # the resumed bytes counted


def test_a_source_header_wins_over_the_defaults(serve: Any, tmp_path: Path) -> None:
    server = serve(whole())
    resume(source(headers={"User-Agent": "mine"}), tmp_path / "x.part", "md5")
    assert server.requests[0].get_header("User-agent") == "mine"


def test_a_whole_part_is_not_fetched_again(serve: Any, tmp_path: Path) -> None:
    server = serve()
    part = tmp_path / "x.part"
    part.write_bytes(BODY)
    assert resume(source(), part, "md5", size=len(BODY)) == md5(BODY) and server.requests == []


def test_a_part_one_byte_short_fetches_the_last_byte(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:-1])
    server = serve(partial(len(BODY) - 1))
    assert resume(source(), part, "md5", size=len(BODY)) == md5(BODY)
    assert server.range() == f"bytes={len(BODY) - 1}-"


def test_a_part_longer_than_the_file_starts_again(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(b"\xff" * (len(BODY) + 1))
    server = serve(whole())
    assert resume(source(), part, "md5", size=len(BODY)) == md5(BODY)
    assert server.range() is None and part.read_bytes() == BODY


def test_a_part_as_long_as_the_limit_is_kept_and_resumed(serve: Any, tmp_path: Path) -> None:
    """Without a known size, a part of exactly ``cap`` bytes can still be the file: it is resumed (the
    server says with 416 that nothing is left... here: 206 with nothing more)."""
    part = tmp_path / "x.part"
    part.write_bytes(BODY)
    server = serve(Answer(206, [], {"Content-Range": f"bytes {len(BODY)}-{len(BODY)}/*", "Content-Length": "0"}))
    assert resume(source(), part, "md5", cap=len(BODY)) == md5(BODY)
    assert server.range() == f"bytes={len(BODY)}-"


# What is answered

@pytest.mark.parametrize("told", [99, 101, -1])
def test_a_206_from_another_offset_leaves_nothing(serve: Any, tmp_path: Path, told: int) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:100])
    answer = partial(100, told=told) if told >= 0 else Answer(206, [BODY[100:]], {"Content-Range": "items 100-1023/1024"})
    serve(answer)
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", size=len(BODY))
    assert caught.value.code == "x_failed" and f"answered bytes from {told}, not 100" in str(caught.value)
    assert not part.exists() and answer.closed


def test_a_200_to_a_range_request_starts_again_from_the_first_byte(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(b"\xff" * 100)  # appended to, this would be corrupt
    serve(whole())
    assert resume(source(), part, "sha1", size=len(BODY)) == hashlib.sha1(BODY).hexdigest()
    assert part.read_bytes() == BODY


def test_a_416_to_a_range_request_starts_again_without_one(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(b"\xff" * 100)
    server = serve(http_error(416), whole())
    assert resume(source(), part, "md5", cap=len(BODY)) == md5(BODY)
    assert [r.get_header("Range") for r in server.requests] == ["bytes=100-", None] and part.read_bytes() == BODY


def test_a_416_to_a_plain_request_is_a_failure(serve: Any, tmp_path: Path) -> None:
    serve(http_error(416))
    with pytest.raises(ServiceError) as caught:
        resume(source(), tmp_path / "x.part", "md5")
    assert caught.value.code == "x_failed" and "HTTP 416 Nope" in str(caught.value)
    assert "check the X setting and try again" in str(caught.value)


@pytest.mark.parametrize("code", [404, 401, 500])
def test_an_http_error_names_its_code_and_the_url(serve: Any, tmp_path: Path, code: int) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:10])
    serve(http_error(code))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5")
    assert f"HTTP {code}" in str(caught.value) and "http://mirror.lan/x.bin" in str(caught.value)
    assert caught.value.data == {"url": "http://mirror.lan/x.bin"} and part.read_bytes() == BODY[:10]


@pytest.mark.parametrize("status", [204, 201, 302])
def test_a_status_other_than_200_or_206_is_a_failure(serve: Any, tmp_path: Path, status: int) -> None:
    serve(Answer(status, [BODY]))
    with pytest.raises(ServiceError) as caught:
        resume(source(), tmp_path / "x.part", "md5")
    assert f"unexpected HTTP {status}" in str(caught.value) and "try again later" in str(caught.value)


@pytest.mark.parametrize("error", [urllib.error.URLError("refused"), ConnectionResetError("reset"), TimeoutError("slow")])
def test_a_connection_that_fails_says_to_check_the_network(serve: Any, tmp_path: Path, error: Exception) -> None:
    serve(error)
    with pytest.raises(ServiceError) as caught:
        resume(source(), tmp_path / "x.part", "md5")
    assert caught.value.code == "x_failed" and "cannot connect (" in str(caught.value)
    assert ("refused" if isinstance(error, urllib.error.URLError) else str(error)) in str(caught.value)
    assert "check the network or the X setting" in str(caught.value)


# The caps

def test_a_content_length_up_to_the_cap_is_taken_and_one_more_is_refused(serve: Any, tmp_path: Path) -> None:
    serve(whole())
    assert resume(source(), tmp_path / "a.part", "md5", cap=len(BODY)) == md5(BODY)
    part = tmp_path / "b.part"
    answer = whole()
    serve(answer)
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", cap=len(BODY) - 1)
    assert f"sends {len(BODY)} bytes, more than the {len(BODY) - 1} expected" in str(caught.value)
    assert not part.exists() and answer.reads == []  # refused before the body


def test_the_content_length_counts_the_resumed_bytes(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:100])
    serve(partial(100))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", cap=len(BODY) - 1)
    assert f"sends {len(BODY)} bytes" in str(caught.value) and not part.exists()


@pytest.mark.parametrize("length", ["abc", "-5", ""])
def test_a_content_length_that_is_not_a_number_is_not_believed(serve: Any, tmp_path: Path, length: str) -> None:
    serve(Answer(200, [BODY], {"Content-Length": length}))
    assert resume(source(), tmp_path / "x.part", "md5", cap=len(BODY)) == md5(BODY)


def test_a_body_without_a_length_is_counted_up_to_the_cap(serve: Any, tmp_path: Path) -> None:
    serve(whole(length=False))
    assert resume(source(), tmp_path / "a.part", "md5", cap=len(BODY)) == md5(BODY)
    part = tmp_path / "b.part"
    serve(Answer(200, [BODY[:600], BODY[600:]]))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", cap=len(BODY) - 1)
    assert f"sent more than the {len(BODY) - 1} bytes expected" in str(caught.value) and not part.exists()
    assert "check the X setting" in str(caught.value)


def test_the_expected_size_is_the_cap_whatever_the_limit(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    serve(whole(length=False))
    with pytest.raises(ServiceError):
        resume(source(), part, "md5", size=len(BODY) - 1, cap=10 * len(BODY))
    assert not part.exists()


def test_the_room_is_judged_before_asking_for_the_bytes_still_missing(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:100])
    server = serve(partial(100))
    assert resume(source(), part, "md5", size=len(BODY), how=Fetch(room=len(BODY) - 100)) == md5(BODY)
    part.write_bytes(BODY[:100])
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", size=len(BODY), how=Fetch(room=len(BODY) - 101))
    assert caught.value.code == "disk_full" and len(server.requests) == 1
    assert f"it takes {len(BODY) - 100} more bytes and there is room for {len(BODY) - 101} more" in str(caught.value)
    assert "free some room" in str(caught.value) and caught.value.data == {"url": "http://mirror.lan/x.bin"}


def test_the_room_counts_the_new_bytes_as_they_come(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:100])
    serve(Answer(206, [BODY[100:]], {"Content-Range": "bytes 100-1023/1024"}))
    assert resume(source(), part, "md5", how=Fetch(room=len(BODY) - 100)) == md5(BODY)
    part.write_bytes(BODY[:100])
    serve(Answer(206, [BODY[100:600], BODY[600:]], {"Content-Range": "bytes 100-1023/1024"}))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", how=Fetch(room=len(BODY) - 101))
    assert caught.value.code == "disk_full" and f"room for {len(BODY) - 101} more bytes" in str(caught.value)
    assert not part.exists()


# A broken or slow connection

def test_a_body_short_of_its_length_keeps_its_part(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    serve(Answer(200, [BODY[:600]], {"Content-Length": str(len(BODY))}))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", size=len(BODY))
    assert f"broke after 600 of {len(BODY)} bytes" in str(caught.value) and "resumes" in str(caught.value)
    assert part.read_bytes() == BODY[:600]


def test_a_read_that_fails_keeps_what_came(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:100])
    serve(Answer(206, [BODY[100:400], ConnectionResetError("reset by peer")], {"Content-Range": "bytes 100-1023/1024"}))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", size=len(BODY))
    assert "the connection broke after 400 bytes (ConnectionResetError: reset by peer)" in str(caught.value)
    assert part.read_bytes() == BODY[:400]


def test_the_body_is_read_as_it_arrives_and_written_in_chunks(serve: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "CHUNK", 256)
    answer = Answer(200, [BODY[:256], BODY[256:300], BODY[300:512], BODY[512:]])
    serve(answer)
    seen: list[int] = []
    assert resume(source(), tmp_path / "x.part", "md5", progress=seen.append) == md5(BODY)
    assert seen == [256, 512, len(BODY)] and set(answer.reads) == {256}


class Ticks:
    """A clock that says what the test sets."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trickle(clock: Ticks, blocks: list[bytes], at: list[float]) -> Answer:
    """A body whose each block arrives at the time given."""
    answer = Answer(200, [])
    pending = list(zip(blocks, at, strict=True))

    def read1(size: int) -> bytes:
        if not pending:
            return b""
        block, when = pending.pop(0)
        clock.now = when
        return block

    answer.read1 = read1  # type: ignore[method-assign]
    return answer


def test_a_download_at_the_minimum_rate_after_the_grace_goes_on(serve: Any, tmp_path: Path) -> None:
    clock = Ticks()
    how = Fetch(min_rate=8, grace=60.0, clock=clock)
    serve(trickle(clock, [BODY[:480], BODY[480:]], [60.0, 61.0]))  # 8 bytes a second at 60 s: in time
    assert resume(source(), tmp_path / "x.part", "md5", how=how) == md5(BODY)


def test_a_download_below_the_minimum_rate_after_the_grace_stops_and_keeps_its_part(serve: Any, tmp_path: Path) -> None:
    clock = Ticks()
    how = Fetch(min_rate=8 << 10, grace=60.0, clock=clock)
    part = tmp_path / "x.part"
    serve(trickle(clock, [BODY[:100], BODY[100:300], BODY[300:]], [50.0, 60.5, 61.0]))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", how=how)
    assert "slower than the 8 KiB/s a download must keep up" in str(caught.value)
    assert f"it came at {300 / 60.5 / 1024:.1f} KiB/s" in str(caught.value) and "resumes" in str(caught.value)
    assert part.read_bytes() == BODY[:300]


def test_within_the_grace_a_slow_start_is_no_failure(serve: Any, tmp_path: Path) -> None:
    clock = Ticks()
    how = Fetch(min_rate=1 << 20, grace=60.0, clock=clock)
    serve(trickle(clock, [BODY[:1], BODY[1:]], [59.0, 60.0]))  # at 60 s exactly the grace has not ended
    assert resume(source(), tmp_path / "x.part", "md5", how=how) == md5(BODY)


def test_the_rate_counts_only_the_new_bytes(serve: Any, tmp_path: Path) -> None:
    clock = Ticks()
    how = Fetch(min_rate=8, grace=60.0, clock=clock)
    part = tmp_path / "x.part"
    part.write_bytes(BODY[:600])  # 600 resumed bytes would make 424 new ones in 61 s look fast enough
    serve(Answer(206, [], {"Content-Range": "bytes 600-1023/1024"}))
    transfer_answer = trickle(clock, [BODY[600:700], BODY[700:]], [61.0, 62.0])
    transfer_answer.status = 206
    transfer_answer.headers = {"Content-Range": "bytes 600-1023/1024"}
    serve(transfer_answer)
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", how=how)
    assert "slower than" in str(caught.value)


def test_the_defaults_are_half_a_minute_a_read_and_32_kib_a_second_after_a_minute() -> None:
    how = Fetch()
    assert (how.timeout, how.room, how.min_rate, how.grace) == (30.0, None, 32 << 10, 60.0)
    assert how.clock is time.monotonic


# Redirects

@pytest.mark.parametrize(("origin", "target", "why"), [
    ("93.184.216.34", "/relative/x.onnx", "a redirect to a relative: URL"),
    ("93.184.216.34", "ftp://93.184.216.35/x", "a redirect to a ftp: URL"),
    ("192.168.1.2", "gopher://192.168.1.3/x", "a redirect to a gopher: URL"),
    ("93.184.216.34", "http://10.0.0.1/x", "a redirect from 93.184.216.34 to the local address 10.0.0.1"),
    ("93.184.216.34", "https://[::1]:8443/x", "a redirect from 93.184.216.34 to the local address ::1"),
    ("93.184.216.34", "http://[fe80::1%25eth0]/x", "a redirect from 93.184.216.34 to the local address fe80::1%25eth0"),
    ("93.184.216.34", "http://100.64.0.1/x", "a redirect from 93.184.216.34 to the local address 100.64.0.1"),
])
def test_what_a_redirect_may_not_do_is_said(origin: str, target: str, why: str) -> None:
    assert redirect_refusal(origin, target) == why


@pytest.mark.parametrize(("origin", "target"), [
    ("93.184.216.34", "https://104.16.0.1/x"), ("93.184.216.34", "HTTPS://104.16.0.1/x"),
    ("127.0.0.1", "http://192.168.1.9/x"), ("[::1]", "http://127.0.0.1/x"),
    ("93.184.216.34", "http://no-such-host.invalid/x"),  # does not resolve: the connection fails on its own
])
def test_what_a_redirect_may_do(origin: str, target: str) -> None:
    assert redirect_refusal(origin, target) is None


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"mixed.example": ["93.184.216.34", "192.168.1.5"], "cdn.example": ["104.16.0.1", "2606:4700::1"],
               "scoped.example": ["fe80::1%eth0"]}
    monkeypatch.setattr(transfer.socket, "getaddrinfo",
                        lambda host, port: [(0, 0, 0, "", (address, 0)) for address in answers[host]])
    assert redirect_refusal("93.184.216.34", "http://mixed.example/x") is not None
    assert redirect_refusal("93.184.216.34", "http://cdn.example/x") is None
    assert redirect_refusal("93.184.216.34", "http://scoped.example/x") is not None
    assert redirect_refusal("cdn.example", "http://mixed.example/x") is not None  # the origin resolved too
    assert redirect_refusal("mixed.example", "http://192.168.1.6/x") is None


@pytest.fixture(scope="module")
def mirror() -> Iterator[VoiceMirror]:
    with VoiceMirror(with_kokoro=False) as server:
        server.files["x.bin"] = BODY
        yield server


def test_a_source_that_follows_no_redirect_refuses_the_first(mirror: VoiceMirror, tmp_path: Path) -> None:
    mirror.redirects["hop"] = mirror.url + "x.bin"
    try:
        assert resume(source(url=mirror.url + "hop"), tmp_path / "a.part", "md5") == md5(BODY)
        with pytest.raises(ServiceError) as caught:
            resume(source(url=mirror.url + "hop", redirects=False), tmp_path / "b.part", "md5")
        assert caught.value.code == "x_failed" and f"a redirect to {mirror.url}x.bin is not followed" in str(caught.value)
        assert "check the X setting" in str(caught.value)
    finally:
        mirror.redirects.clear()


def test_a_refused_redirect_without_a_source_is_a_voice_download_failure(mirror: VoiceMirror) -> None:
    hops = [f"hop/{i}" for i in range(6)]
    mirror.redirects.update({hop: mirror.url + (hops[i + 1] if i + 1 < len(hops) else "x.bin") for i, hop in enumerate(hops)})
    try:
        with transfer.urlopen(urllib.request.Request(mirror.url + hops[1]), 5) as five:
            assert five.read() == BODY
        with pytest.raises(ServiceError) as caught:
            transfer.urlopen(urllib.request.Request(mirror.url + hops[0]), 5)
        assert caught.value.code == "voice_download_failed" and "more than 5 redirects" in str(caught.value)
        assert "check the voices URL setting" in str(caught.value) and caught.value.data["url"].startswith(mirror.url)
    finally:
        mirror.redirects.clear()


# Small parts

@pytest.mark.parametrize(("header", "start"), [
    ("bytes 100-199/200", 100), ("  bytes 0-9/10 ", 0), ("bytes 7-/*", 7), ("items 100-199/200", -1),
    ("bytes x-1/2", -1), ("bytes -5/10", -1), ("", -1), ("bytes100-199/200", -1),
])
def test_the_first_byte_of_a_content_range(header: str, start: int) -> None:
    assert range_start(header) == start


def test_a_part_a_day_old_goes_and_a_younger_one_or_another_file_stays(tmp_path: Path) -> None:
    now = time.time()
    (tmp_path / "deep").mkdir()
    old = tmp_path / "deep" / "old.part"
    young = tmp_path / "young.part"
    kept = tmp_path / "old.onnx"
    for path, age in ((old, 86400 + 100), (young, 86400 - 100), (kept, 10 * 86400)):
        path.write_bytes(b"x")
        os.utime(path, (now - age, now - age))
    stale_parts(tmp_path)
    assert not old.exists() and young.exists() and kept.exists()
    stale_parts(tmp_path, max_age=50)
    assert not young.exists()
    stale_parts(tmp_path / "none")  # no folder: nothing to do


def test_a_missing_part_is_empty_and_a_file_is_hashed_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert transfer.size_of(tmp_path / "none") == 0
    monkeypatch.setattr(transfer, "CHUNK", 100)
    (tmp_path / "f").write_bytes(BODY)
    assert transfer.hash_file(tmp_path / "f", transfer.new_digest("md5")).hexdigest() == md5(BODY)


def test_a_part_is_stale_from_one_second_past_a_day_and_the_removal_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1_000_000_000.0
    monkeypatch.setattr(transfer.time, "time", lambda: now)
    parts = {age: tmp_path / f"{age}.part" for age in (86400.0, 86400.5)}
    for age, part in parts.items():
        part.write_bytes(b"x")
        os.utime(part, (now - age, now - age))
    with caplog.at_level(logging.INFO, "agent.transfer"):
        stale_parts(tmp_path)
    assert parts[86400.0].exists() and not parts[86400.5].exists()  # a day exactly is not yet more than a day
    assert [r.getMessage() for r in caplog.records] == [f"removing {parts[86400.5]}, a download not resumed for a day"]


def test_a_refused_redirect_without_a_source_names_the_url_that_was_asked(mirror: VoiceMirror) -> None:
    mirror.redirects["to-ftp"] = "ftp://127.0.0.1:1/x.bin"
    try:
        with pytest.raises(ServiceError) as caught:
            transfer.urlopen(urllib.request.Request(mirror.url + "to-ftp"), 5)
        assert caught.value.data == {"url": mirror.url + "to-ftp"}
        assert str(caught.value) == (f"downloading {mirror.url}to-ftp failed: a redirect to a ftp: URL is not followed; "
                                     "check the voices URL setting")
    finally:
        mirror.redirects.clear()


# Mutation survivors

def test_a_416_starts_again_under_the_same_cap_and_progress(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(b"\xff" * 100)
    serve(http_error(416), whole(length=False))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", cap=len(BODY) - 1)
    assert "more than the" in str(caught.value) and not part.exists()
    part.write_bytes(b"\xff" * 100)
    serve(http_error(416), whole())
    seen: list[int] = []
    resume(source(), part, "md5", cap=len(BODY), progress=seen.append)
    assert seen == [len(BODY)]


def test_a_206_to_a_plain_request_from_another_offset_leaves_nothing(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    serve(partial(5))
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5")
    assert caught.value.code == "x_failed" and "answered bytes from 5, not 0" in str(caught.value) and not part.exists()


def test_a_refused_connection_says_the_reason_alone(serve: Any, tmp_path: Path) -> None:
    serve(urllib.error.URLError("connection refused"))
    with pytest.raises(ServiceError) as caught:
        resume(source(), tmp_path / "x.part", "md5")
    assert str(caught.value) == ("downloading http://mirror.lan/x.bin failed: cannot connect (connection refused); check "
                                 "the network or the X setting, then try again")


def test_a_stalled_server_times_out_at_the_timeout_given(mirror: VoiceMirror, tmp_path: Path) -> None:
    mirror.faults.stall["x.bin"] = 3.0
    try:
        with pytest.raises(ServiceError) as caught:
            resume(source(url=mirror.url + "x.bin"), tmp_path / "x.part", "md5", how=Fetch(timeout=0.2))
        assert caught.value.code == "x_failed"
    finally:
        mirror.faults.clear()


def test_a_chunk_is_written_at_its_size_exactly_and_not_a_byte_before(serve: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "CHUNK", 256)
    serve(Answer(200, [BODY[:255], BODY[255:256], BODY[256:511], BODY[511:512], BODY[512:]]))
    seen: list[int] = []
    assert resume(source(), tmp_path / "x.part", "md5", progress=seen.append) == md5(BODY)
    assert seen == [256, 512, len(BODY)]


def test_the_errors_of_a_broken_and_a_slow_download_say_exactly_what_to_do(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    serve(Answer(200, [BODY[:10], TimeoutError("timed out")]))
    with pytest.raises(ServiceError) as broke:
        resume(source(), part, "md5")
    assert str(broke.value) == ("downloading http://mirror.lan/x.bin failed: the connection broke after 10 bytes "
                                "(TimeoutError: timed out); try again: the download resumes where it stopped")
    clock = Ticks()
    part.write_bytes(BODY[:10])
    slow = trickle(clock, [BODY[10:1034 - 10]], [0.002])
    slow.status, slow.headers = 206, {"Content-Range": "bytes 10-1023/1024"}
    serve(slow)
    with pytest.raises(ServiceError) as slowed:
        resume(source(), part, "md5", how=Fetch(min_rate=1 << 30, grace=0.001, clock=clock))
    assert str(slowed.value) == ("downloading http://mirror.lan/x.bin failed: it came at 495.1 KiB/s, slower than the "
                                 "1048576 KiB/s a download must keep up; try again later (or from another source): the "
                                 "download resumes where it stopped")


def test_exactly_the_minimum_rate_after_the_grace_goes_on(serve: Any, tmp_path: Path) -> None:
    clock = Ticks()
    serve(trickle(clock, [BODY[:488], BODY[488:]], [61.0, 62.0]))  # 488 bytes in 61 s: 8 a second exactly
    assert resume(source(), tmp_path / "x.part", "md5", how=Fetch(min_rate=8, grace=60.0, clock=clock)) == md5(BODY)


def failure(serve: Any, part: Path, answer: Answer, **kwargs: Any) -> str:
    serve(answer)
    with pytest.raises(ServiceError) as caught:
        resume(source(), part, "md5", **kwargs)
    return str(caught.value).removeprefix("downloading http://mirror.lan/x.bin failed: ")


def test_each_refused_answer_says_exactly_what_to_do(serve: Any, tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    assert failure(serve, part, Answer(206, [BODY])) == "the server answered bytes from -1, not 0; try again"
    assert failure(serve, part, Answer(204, [])) == "unexpected HTTP 204; try again later"
    assert failure(serve, part, whole(), cap=10) == f"the server sends {len(BODY)} bytes, more than the 10 expected; check the X setting"
    assert failure(serve, part, Answer(200, [BODY[:5]], {"Content-Length": "9"})) == (
        "the connection broke after 5 of 9 bytes; try again: the download resumes where it stopped")

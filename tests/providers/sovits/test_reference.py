"""Finding a speaker's reference, and getting it to a server on another machine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from providers.base import (
    ProviderContext,
    ProviderError,
    ProviderUnavailableError,
    VoiceNotFoundError,
)
from providers.sovits.config import SovitsSettings
from providers.sovits.engine import SovitsProvider
from providers.sovits.receiver import ReceiverServer
from providers.sovits.reference import find_reference, mapped_path
from tests.fake_sovits import FakeOptions, FakeSovits
from tests.mosquitto import free_port
from tests.providers.sovits.conftest import speaker_dir, write_reference


def test_no_reference_names_the_folder_to_fill(ctx: ProviderContext) -> None:
    folder = speaker_dir(ctx)
    with pytest.raises(VoiceNotFoundError) as caught:
        find_reference(ctx, "default")
    message = str(caught.value)
    assert f"put a 3-10 s WAV or MP3 and its transcript (same name, .txt) in {folder}" in message


def test_reference_without_transcript_is_used_reference_free(ctx: ProviderContext) -> None:
    """GPT-SoVITS speaks without prompt text (its reference-free mode on v1/v2 models): better
    a less close voice than Piper's. The tag still follows the audio, so the cache does too."""
    audio = write_reference(speaker_dir(ctx), transcript=None)
    free = find_reference(ctx, "default")
    assert (free.audio, free.transcript) == (audio, "")
    audio.with_suffix(".txt").write_text("  \n", encoding="utf-8")
    assert find_reference(ctx, "default").transcript == ""
    audio.with_suffix(".txt").unlink()
    audio.with_suffix(".lab").write_text("GPT-SoVITS' own .lab files work too.", encoding="utf-8")
    assert find_reference(ctx, "default").transcript == "GPT-SoVITS' own .lab files work too."


def test_household_reference_unless_the_profile_has_its_own(ctx: ProviderContext) -> None:
    household = write_reference(ctx.voices_dirs[1] / "sovits-reference" / "default", transcript="Household words.")
    assert find_reference(ctx, "default").audio == household
    own = write_reference(speaker_dir(ctx), transcript="My own words.")
    found = find_reference(ctx, "default")
    assert (found.audio, found.transcript) == (own, "My own words.")


def test_newest_reference_with_a_transcript_wins(ctx: ProviderContext) -> None:
    import os

    older = write_reference(speaker_dir(ctx), name="a-older", transcript="Older.")
    newer = write_reference(speaker_dir(ctx), name="b-newer", transcript="Newer.")
    os.utime(older, (1_000_000, 1_000_000))
    assert find_reference(ctx, "default").audio == newer


@pytest.mark.parametrize("speaker", ["../etc", "a/b", "x" * 65, "a:b"])
def test_speaker_ids_are_plain_names(provider: SovitsProvider, ctx: ProviderContext, speaker: str) -> None:
    with pytest.raises(ValidationError, match="speakerId"):  # a speak request's override is refused...
        SovitsSettings().with_request(speaker, None)
    unchecked = SovitsSettings().model_copy(update={"speaker_id": speaker})
    with pytest.raises(VoiceNotFoundError, match="invalid GPT-SoVITS speaker id"):  # ...and the provider checks again
        list(provider.synthesize("x", unchecked, ctx))


def test_path_map() -> None:
    mapping = {"/srv/voice-agent": "/mnt/agent", "/srv/voice-agent/profiles/anna": "D:\\refs\\anna"}
    assert mapped_path(Path("/srv/voice-agent/profiles/bob/x.wav"), mapping) == "/mnt/agent/profiles/bob/x.wav"
    assert mapped_path(Path("/srv/voice-agent/profiles/anna/out/x.wav"), mapping) == "D:\\refs\\anna\\out\\x.wav"
    assert mapped_path(Path("/srv/voice-agent-other/x.wav"), mapping) == "/srv/voice-agent-other/x.wav"


@pytest.fixture()
def remote(tmp_path: Path) -> Iterator[FakeSovits]:
    """A server on "another machine": it sees only its own disk (here, one folder)."""
    disk = tmp_path / "remote-disk"
    disk.mkdir()
    server = FakeSovits(FakeOptions(visible_root=disk)).start()
    yield server
    server.stop()


def test_remote_server_cannot_open_a_local_path(
    provider: SovitsProvider, remote: FakeSovits, ctx: ProviderContext, reference: Path
) -> None:
    with pytest.raises(ProviderError, match="No such file.*share the folder \\(tts.sovits.pathMap\\) or upload it"):
        list(provider.synthesize("Hi.", SovitsSettings(serverUrl=remote.url, streamingMode=0), ctx))


def test_remote_server_through_a_shared_folder(
    provider: SovitsProvider, remote: FakeSovits, ctx: ProviderContext, home: Path
) -> None:
    assert remote.options.visible_root is not None
    mount = remote.options.visible_root / "voice-agent"
    mount.symlink_to(home)  # the agent's home, as the server machine mounts it
    reference = write_reference(speaker_dir(ctx))
    settings = SovitsSettings(serverUrl=remote.url, pathMap={str(home): str(mount)})

    assert list(provider.synthesize("Hi.", settings, ctx))
    assert remote.requests[-1]["ref_audio_path"] == str(mount / reference.relative_to(home))


@pytest.fixture()
def receiver(remote: FakeSovits) -> Iterator[ReceiverServer]:
    assert remote.options.visible_root is not None
    server = ReceiverServer(("127.0.0.1", 0), remote.options.visible_root / "refs", token="s3cret")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def upload_settings(remote: FakeSovits, receiver: ReceiverServer, token: str = "s3cret") -> SovitsSettings:
    return SovitsSettings(
        serverUrl=remote.url, referenceTransfer="upload", uploadUrl=f"http://127.0.0.1:{receiver.server_address[1]}",
        uploadToken=token,
    )


def test_remote_server_with_reference_upload(
    provider: SovitsProvider, remote: FakeSovits, receiver: ReceiverServer, ctx: ProviderContext, reference: Path
) -> None:
    settings = upload_settings(remote, receiver)
    chunks = list(provider.synthesize("Uploaded first.", settings, ctx))
    list(provider.synthesize("Then reused.", settings, ctx))

    assert chunks
    sent = remote.requests[-1]["ref_audio_path"]
    assert Path(sent).parent == receiver.directory
    assert Path(sent).read_bytes() == reference.read_bytes()
    assert remote.requests[0]["ref_audio_path"] == sent
    assert len(list(receiver.directory.iterdir())) == 1

    # the receiver lost the file: the request fails, the next one uploads again
    Path(sent).unlink()
    with pytest.raises(ProviderError, match="No such file"):
        list(provider.synthesize("Lost.", settings.model_copy(update={"streaming_mode": 0}), ctx))
    assert list(provider.synthesize("Uploaded again.", settings, ctx))
    assert Path(sent).read_bytes() == reference.read_bytes()

    # a new reference is uploaded under a new name
    write_reference(reference.parent, seconds=6.0)
    list(provider.synthesize("New voice.", settings, ctx))
    assert remote.requests[-1]["ref_audio_path"] != sent


def test_upload_refused_or_unreachable(
    provider: SovitsProvider, remote: FakeSovits, receiver: ReceiverServer, ctx: ProviderContext, reference: Path
) -> None:
    with pytest.raises(ProviderError, match=r"refused the upload \(HTTP 401\)"):
        list(provider.synthesize("Hi.", upload_settings(remote, receiver, token="wrong"), ctx))
    gone = SovitsSettings(serverUrl=remote.url, referenceTransfer="upload", uploadUrl=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderUnavailableError, match="cannot upload the GPT-SoVITS reference.*is the receiver running"):
        list(provider.synthesize("Hi.", gone, ctx))
    with pytest.raises(ProviderUnavailableError, match="uploadUrl is not set"):
        list(provider.synthesize("Hi.", SovitsSettings(serverUrl=remote.url, referenceTransfer="upload"), ctx))
    assert remote.requests == []

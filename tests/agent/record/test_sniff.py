"""The containers a recording may come in (agent/record/sniff.py, decode.py): WAV, FLAC, OGG
Vorbis and Opus, and MP3 decode to the same mono float audio; any other container is refused by its
first bytes; a WAV header that states far more audio than the file holds is refused with both
numbers (the lengths writers use for "unknown" excepted); a small FLAC that claims eleven minutes is
refused before it is decoded, and one that states no length is refused in words."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile

from agent.record.decode import AudioDecodeError, decode_wav
from agent.record.sniff import kind_of, wav_data_length
from tests.speech import wav

RATE = 22050


def tone(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def encoded(audio: np.ndarray, rate: int, container: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format=container, subtype=subtype)
    return buffer.getvalue()


def refusal(data: bytes, **kwargs: float) -> str:
    with pytest.raises(AudioDecodeError) as caught:
        decode_wav(data, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize(("container", "subtype", "rate", "kind"), [
    ("FLAC", "PCM_16", RATE, "FLAC"), ("OGG", "VORBIS", RATE, "OGG"), ("OGG", "OPUS", 48000, "OGG"),
    ("MP3", "MPEG_LAYER_III", RATE, "MP3"), ("WAV", "PCM_16", RATE, "WAV"),
])
def test_each_container_a_household_sends_decodes_to_the_same_tone(container: str, subtype: str, rate: int, kind: str) -> None:
    source = tone(1.0, rate)
    data = encoded(source, rate, container, subtype)
    assert kind_of(data) == kind
    audio = decode_wav(data, rate=16000)
    assert audio.rate == 16000 and audio.samples.dtype == np.float32
    assert abs(audio.seconds - 1.0) < 0.06  # MP3 and Opus pad a frame or two
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert abs(np.argmax(spectrum) * 16000 / len(audio.samples) - 330) < 3  # the same pitch came out


def test_an_mp3_with_an_id3_tag_in_front_is_taken() -> None:
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 10]) + b"\x00" * 10  # an ID3v2 header and 10 bytes of padding
    audio = decode_wav(tag + encoded(tone(), RATE, "MP3", "MPEG_LAYER_III"))
    assert abs(audio.seconds - 1.0) < 0.06


@pytest.mark.parametrize(("container", "subtype"), [("AIFF", "PCM_16"), ("AU", "PCM_16"), ("CAF", "PCM_16"), ("W64", "PCM_16")])
def test_other_containers_libsndfile_reads_are_refused_by_their_first_bytes(container: str, subtype: str) -> None:
    assert refusal(encoded(tone(), RATE, container, subtype)) == "not a WAV, FLAC, OGG (Vorbis or Opus) or MP3 file"


def test_a_file_that_starts_like_flac_and_is_not_one_is_refused_in_words() -> None:
    assert refusal(b"fLaC" + bytes(range(256)) * 8) == \
        "not a readable FLAC file: File contains data in an unimplemented format."


def with_stated_length(data: bytes, stated: int) -> bytes:
    forged = bytearray(data)
    at = forged.index(b"data") + 4
    forged[at:at + 4] = struct.pack("<I", stated)
    return bytes(forged)


def test_a_wav_header_claiming_gigabytes_is_refused_with_both_numbers() -> None:
    data = wav(tone(), RATE)
    assert wav_data_length(data) == (len(data) - 44, len(data) - 44)
    assert refusal(with_stated_length(data, 1_500_000_000)) == \
        "the WAV header says it holds 1.5 GB of audio but the file has 44.1 kB: a cut-off or forged file"


@pytest.mark.parametrize("stated", [0x7FFF0000, 0x7FFFFFFF, 0xFFFFFFFF])
def test_the_lengths_a_pipe_writer_leaves_mean_unknown_and_the_file_is_read_as_it_is(stated: int) -> None:
    audio = decode_wav(with_stated_length(wav(tone(), RATE), stated))
    assert len(audio.samples) == RATE


def test_a_short_missing_tail_is_read_and_one_byte_past_the_slack_is_refused() -> None:
    data = wav(tone(), RATE)
    present = len(data) - 44
    assert len(decode_wav(with_stated_length(data, present + 64 * 1024)).samples) == RATE
    assert "a cut-off or forged file" in refusal(with_stated_length(data, present + 64 * 1024 + 1))


def silent_flac(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(int(seconds)):
            out.write(np.zeros(rate, np.float32))
    return buffer.getvalue()


def without_length(flac: bytes) -> bytes:
    """The FLAC with STREAMINFO's total sample count zeroed: 'unknown', as a streaming encoder writes."""
    forged = bytearray(flac)
    at = 8 + 10  # STREAMINFO follows the marker and its block header; the count is the low 36 bits of these 8 bytes
    packed = int.from_bytes(forged[at:at + 8], "big")
    forged[at:at + 8] = ((packed >> 36) << 36).to_bytes(8, "big")
    return bytes(forged)


def test_a_small_flac_that_claims_eleven_minutes_is_refused_before_it_is_decoded() -> None:
    bomb = silent_flac(660)
    assert len(bomb) < 20_000  # 660 s of 8 kHz audio in 15 kB
    assert refusal(bomb) == "audio is 660 s long; the limit is 600 s"


def test_a_flac_that_states_no_length_is_refused_in_words_not_read_until_libsndfile_fails() -> None:
    assert decode_wav(silent_flac(3), max_seconds=3).seconds == 3.0
    assert refusal(without_length(silent_flac(3)), max_seconds=3) == \
        "the FLAC file does not say how long it is: save it again with an editor"

"""What an audio file says it is, read from its first bytes before any decoder sees it.

libsndfile reads some twenty containers; a household sends four (WAV, FLAC, OGG Vorbis or Opus,
MP3). The others are refused by their first bytes, so a recording never reaches a parser nobody
meant to offer. A WAV's header states how many bytes of audio follow: one that states far more
than the file holds (a forged header "claiming gigabytes", or a file cut off in transit) is
refused here with both numbers, not decoded as whatever happens to be there. The compressed
containers' lengths are checked once opened (``decode.py``: the header's length against the limit,
then what is actually read, block by block, whatever the header said).
"""

from __future__ import annotations

FORMATS = "WAV, FLAC, OGG (Vorbis or Opus) or MP3"
# The container each kind may open as (soundfile's ``format``); anything else is refused.
OPENS_AS = {"WAV": ("WAV", "WAVEX", "RF64"), "FLAC": ("FLAC",), "OGG": ("OGG",), "MP3": ("MP3",)}
# A WAV written to a pipe cannot go back to fill in its length: writers leave about 2 GiB (arecord)
# or 0xFFFFFFFF (ffmpeg) there. Such a length means "unknown", not a claim: libsndfile reads what
# is there (and decode.py counts it). Claims below it that the file does not hold are refused.
UNKNOWN_LENGTH = 0x7FFF0000  # at least this much (up to 0xFFFFFFFF)
CUT_SLACK = 64 * 1024  # a tail this short missing is read as it is (a third of a second of CD audio)
CHUNK_SCAN = 1024 * 1024  # the data chunk comes after a few small ones: look no further


class HeaderError(ValueError):
    """The first bytes say this is not a recording we take; the message says why."""


def kind_of(data: bytes) -> str:
    """``WAV``, ``FLAC``, ``OGG`` or ``MP3`` from the first bytes, or ``HeaderError``; a WAV's
    stated length is checked against the bytes present."""
    head = data[:12]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        if head[:4] == b"RIFF":
            _check_wav_length(data)
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"
    raise HeaderError(f"not a {FORMATS} file")


def wav_data_length(data: bytes) -> tuple[int, int] | None:
    """(bytes of audio the ``data`` chunk states, bytes present after its header), or None
    when no data chunk starts within the first ``CHUNK_SCAN`` bytes (the decoder says why)."""
    offset = 12
    while offset + 8 <= min(len(data), CHUNK_SCAN):
        chunk, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        if chunk == b"data":
            return size, len(data) - offset - 8
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    return None


def _check_wav_length(data: bytes) -> None:
    found = wav_data_length(data)
    if found is None:
        return
    stated, present = found
    if present + CUT_SLACK < stated < UNKNOWN_LENGTH:
        raise HeaderError(f"the WAV header says it holds {_size(stated)} of audio but the file has "
                          f"{_size(present)}: a cut-off or forged file")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"

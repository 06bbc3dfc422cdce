"""16-bit mono PCM as the audio formats clients ask for: ``wav``, ``mp3``, ``opus`` (Ogg/Opus),
``flac`` and ``pcm`` (raw signed 16-bit little-endian at 24 kHz, what OpenAI clients assume).

Every compressed format is libsndfile's (through ``soundfile``): no encoder is written here. AAC is
not among them (libsndfile has no AAC encoder and no other well-kept one is installed), so ``aac``
is refused with ``unsupported_format``, as is any other name.

Two ways to encode:
- ``encode``: a whole utterance into a complete file (a FLAC that knows its length, an MP3 whose
  first frame carries LAME's gapless tag), for an answer sent at once.
- ``StreamEncoder``: PCM chunks in, the encoded bytes that are ready out, for an answer that leaves
  as it is made. libsndfile writes each format front to back and goes back only at the end to fill
  in lengths; a stream cannot go back, so those late rewrites are dropped and the stream keeps
  what it said at first: a WAV with open lengths (0xFFFFFFFF, as Piper's and OpenAI's streams), an
  MP3 whose first frame is the silent frame LAME meant to fill with its tag. FLAC is the exception:
  its STREAMINFO would say "length unknown", which the format allows but libsndfile (soundfile)
  cannot read back, so a FLAC leaves whole, at the end. MP3 is constant bit rate, so a reader that
  estimates the length from the bit rate (libsndfile, players' seek bars) is right without that tag.
  Ogg/Opus pages leave every ``OPUS_PAGE_MS`` (libsndfile's default holds them for a second).

Opus takes 8/12/16/24/48 kHz only, and ``pcm`` carries no rate: both are resampled to 24 kHz
(soxr); the other formats keep the voice's own rate (22.05 kHz for most Piper voices).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.errors import ServiceError

PCM_RATE = 24000  # what OpenAI clients assume for ``pcm`` (raw samples carry no rate)
OPUS_RATE = 24000
OPUS_PAGE_MS = 100.0  # an Ogg page at least this often: the first bytes leave within a sentence
MP3_COMPRESSION = 0.7  # libsndfile's 0 (best) .. 1 (smallest): 56 kbit/s constant at 22.05/24 kHz
UNSUPPORTED = "unsupported_format"

# libsndfile's sf_command numbers (sndfile.h): soundfile has no wrapper for these
_SFC_SET_COMPRESSION_LEVEL = 0x1301
_SFC_SET_OGG_PAGE_LATENCY_MS = 0x1302
_SFC_SET_BITRATE_MODE = 0x1305
_SF_BITRATE_MODE_CONSTANT = 0


@dataclass(frozen=True)
class AudioFormat:
    """One format a client may ask for: its MIME type, and libsndfile's names for it (none: written
    here, WAV's header or raw samples); ``rate``: the one rate it is sent at (None: the voice's)."""

    name: str
    media_type: str
    container: str | None = None
    subtype: str | None = None
    rate: int | None = None
    streams: bool = True  # False: sent whole at the end (``StreamEncoder`` holds the PCM)


FORMATS: dict[str, AudioFormat] = {
    "wav": AudioFormat("wav", "audio/wav"),
    "pcm": AudioFormat("pcm", "audio/pcm", rate=PCM_RATE),
    "mp3": AudioFormat("mp3", "audio/mpeg", "MP3", "MPEG_LAYER_III"),
    "opus": AudioFormat("opus", "audio/ogg", "OGG", "OPUS", rate=OPUS_RATE),
    "flac": AudioFormat("flac", "audio/flac", "FLAC", "PCM_16", streams=False),
}
REFUSED = {"aac": "AAC: no well-kept AAC encoder is installed (libsndfile has none); ask for mp3, opus, flac, wav or pcm"}


def audio_format(name: str) -> AudioFormat:
    """The format called ``name``, or ``unsupported_format`` saying which ones there are."""
    found = FORMATS.get(name)
    if found is not None:
        return found
    reason = REFUSED.get(name, f"unknown audio format {name!r}; known: {', '.join(FORMATS)}")
    raise ServiceError(UNSUPPORTED, reason, {"format": name, "supported": list(FORMATS)})


def encode(pcm: bytes, rate: int, name: str) -> bytes:
    """A whole utterance (16-bit mono PCM at ``rate``) as one complete file in format ``name``."""
    fmt = audio_format(name)
    pcm, rate = _resampled(pcm, rate, fmt.rate)
    if fmt.container is None:
        return pcm if fmt.name == "pcm" else wav_header(rate, len(pcm)) + pcm
    buffer = io.BytesIO()
    _write_all(buffer, fmt, rate, pcm)
    return buffer.getvalue()


class StreamEncoder:
    """One utterance in format ``name``, encoded as its PCM arrives: ``feed`` a chunk, get the bytes
    ready so far (maybe none: an encoder holds a frame or a page until it is full); ``finish``
    gives the rest. Not thread-safe: one request's worker feeds it."""

    def __init__(self, name: str) -> None:
        self.format = audio_format(name)
        self._rate: int | None = None  # the rate sent: the first chunk's, or the format's own
        self._source_rate = 0  # the first chunk's rate: later chunks are made this rate first
        self._resampler: Any = None
        self._sink = _StreamSink()
        self._file: Any = None
        self._held: list[bytes] = []  # a format that does not stream: its PCM until ``finish``

    def feed(self, pcm: bytes, rate: int) -> bytes:
        fmt = self.format
        if not fmt.streams:
            if self._rate is None:
                self._rate = self._source_rate = rate
            self._held.append(pcm if rate == self._source_rate else _resampled(pcm, rate, self._source_rate)[0])
            return b""
        if self._rate is None:
            self._rate = fmt.rate or rate
            self._resampler = _stream_resampler(rate, self._rate)
            self._source_rate = rate
            if fmt.container is not None:
                self._file = _open(self._sink, fmt, self._rate)
            elif fmt.name == "wav":
                self._sink.write(wav_header(self._rate, None))
        elif rate != self._source_rate:  # a voice that changed mid-request (a fallback): its rate is made ours
            pcm, _ = _resampled(pcm, rate, self._source_rate)
        if self._resampler is not None:
            pcm = self._resampler(pcm, False)
        self._put(pcm)
        return self._sink.take()

    def finish(self) -> bytes:
        """The encoded rest (an empty utterance: a stream with no samples, still a valid file)."""
        if not self.format.streams:
            return encode(b"".join(self._held), self._source_rate or PCM_RATE, self.format.name)
        if self._rate is None:
            self.feed(b"", self.format.rate or PCM_RATE)
        if self._resampler is not None:
            self._put(self._resampler(b"", True))
        if self._file is not None:
            self._file.close()
            self._file = None
        return self._sink.take()

    def _put(self, pcm: bytes) -> None:
        if not pcm:
            return
        if self._file is not None:
            self._file.write(np.frombuffer(pcm, dtype="<i2"))
        else:
            self._sink.write(pcm)


class _StreamSink:
    """The file-like object libsndfile writes to: it goes forward, and what it writes at or past the
    bytes already taken is kept until ``take``; a rewrite of bytes already sent is dropped."""

    def __init__(self) -> None:
        self._sent = 0  # bytes handed out: the stream's length so far
        self._pending = bytearray()  # the bytes after them
        self._pos = 0

    def write(self, data: Any) -> int:
        data = bytes(data)
        start = self._pos
        self._pos += len(data)
        if self._pos <= self._sent:
            return len(data)
        if start < self._sent:  # the part before ``_sent`` was sent already
            data, start = data[self._sent - start:], self._sent
        offset = start - self._sent
        if offset > len(self._pending):
            self._pending.extend(bytes(offset - len(self._pending)))
        self._pending[offset:offset + len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        end = self._sent + len(self._pending)
        self._pos = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: end}[whence] + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        return b""  # libsndfile reads nothing back from a file it writes in these formats

    def take(self) -> bytes:
        out = bytes(self._pending)
        self._sent += len(out)
        self._pending.clear()
        return out


def _open(target: Any, fmt: AudioFormat, rate: int) -> Any:
    """A libsndfile writer on ``target``, set up for ``fmt``."""
    sf = _soundfile()
    handle = sf.SoundFile(target, "w", samplerate=rate, channels=1, format=fmt.container, subtype=fmt.subtype)
    if fmt.name == "mp3":
        _command(handle, _SFC_SET_BITRATE_MODE, "int*", _SF_BITRATE_MODE_CONSTANT)
        _command(handle, _SFC_SET_COMPRESSION_LEVEL, "double*", MP3_COMPRESSION)
    elif fmt.name == "opus":
        _command(handle, _SFC_SET_OGG_PAGE_LATENCY_MS, "double*", OPUS_PAGE_MS)
    return handle


def _write_all(target: Any, fmt: AudioFormat, rate: int, pcm: bytes) -> None:
    handle = _open(target, fmt, rate)
    try:
        if pcm:
            handle.write(np.frombuffer(pcm, dtype="<i2"))
    finally:
        handle.close()


def _command(handle: Any, command: int, kind: str, value: float) -> None:
    """One ``sf_command`` on an open file. Its answer is not read: libsndfile 1.2.2 answers these
    three inconsistently (SF_TRUE for one, 0 for the others, on success); the tests check their
    effect (a constant bit rate, pages within a sentence)."""
    import soundfile

    cdata = soundfile._ffi.new(kind, value)
    soundfile._snd.sf_command(handle._file, command, cdata, soundfile._ffi.sizeof(kind[:-1]))


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError as exc:  # an install without it: WAV and PCM still work
        raise ServiceError(UNSUPPORTED, "compressed audio needs soundfile: pip install soundfile") from exc
    return soundfile


def _resampled(pcm: bytes, rate: int, wanted: int | None) -> tuple[bytes, int]:
    if wanted is None or wanted == rate or not pcm:
        return pcm, wanted or rate
    import soxr

    samples = soxr.resample(np.frombuffer(pcm, dtype="<i2"), rate, wanted)
    return np.asarray(samples, dtype="<i2").tobytes(), wanted


def _stream_resampler(rate: int, wanted: int) -> Callable[[bytes, bool], bytes] | None:
    """``(pcm, last) -> pcm`` at ``wanted`` Hz, its filter's state kept between chunks."""
    if rate == wanted:
        return None
    import soxr

    stream = soxr.ResampleStream(rate, wanted, 1, dtype="int16")

    def resample(pcm: bytes, last: bool) -> bytes:
        out = stream.resample_chunk(np.frombuffer(pcm, dtype="<i2"), last=last)
        return np.asarray(out, dtype="<i2").tobytes()

    return resample


def wav_header(rate: int, data_bytes: int | None = None) -> bytes:
    """A 16-bit mono WAV header; ``data_bytes`` None: a stream of open length (0xFFFFFFFF sizes)."""
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    data = 0xFFFFFFFF if data_bytes is None else data_bytes
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16,
                       b"data", data)

"""The reference audio of a GPT-SoVITS speaker, and how it reaches the server.

Each speaker is a folder ``out/voices/sovits-reference/<speaker>/`` (the profile's first, then
the household's) holding a 3-10 s WAV or MP3 and its transcript beside it (same name, ``.txt``
or ``.lab``). The record path keeps the profile's folder filled with the best sample.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from providers.base import ProviderContext, ProviderError, ProviderUnavailableError, VoiceNotFoundError
from providers.common.names import is_plain_name
from providers.sovits.config import SovitsSettings

log = logging.getLogger(__name__)

FOLDER = "sovits-reference"
AUDIO_SUFFIXES = (".wav", ".mp3")
TRANSCRIPT_SUFFIXES = (".txt", ".lab")
SECONDS = (3.0, 10.0)  # GPT-SoVITS refuses references outside this range
UPLOAD_LIMIT = 32 * 1024 * 1024


@dataclass(frozen=True)
class Reference:
    audio: Path
    transcript: str
    tag: str  # changes whenever the audio or its transcript changes
    text_file: Path | None = None  # where the transcript was read (None: reference-free mode)


def speaker_dirs(ctx: ProviderContext, speaker: str) -> list[Path]:
    if not is_plain_name(speaker):
        raise VoiceNotFoundError(f"invalid GPT-SoVITS speaker id {speaker!r}: a letter or digit, then letters, digits, '_' and '-' (at most 64)")
    return [voices / FOLDER / speaker for voices in ctx.voices_dirs]


def find_reference(ctx: ProviderContext, speaker: str) -> Reference:
    """The speaker's reference: the newest audio file with a transcript, profile folder first. One
    without (or with an empty one) is still used, in GPT-SoVITS' reference-free mode: its
    ``transcript`` is then empty, and the engine says so in the log."""
    folders = speaker_dirs(ctx, speaker)
    for folder in folders:
        candidates = _audio_files(folder)
        if not candidates:
            continue
        with_text = [(a, t) for a, t in ((a, _transcript_of(a)) for a in candidates) if t is not None]
        if not with_text:
            audio = max(candidates, key=lambda path: (_mtime(path), path.name))
            _check_length(audio)
            return Reference(audio, "", _tag(audio, None))
        audio, text_file = max(with_text, key=lambda pair: (_mtime(pair[0]), pair[0].name))
        try:
            transcript = text_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise VoiceNotFoundError(f"cannot read the transcript {text_file}: {exc}") from exc
        _check_length(audio)
        return Reference(audio, transcript, _tag(audio, text_file), text_file)
    raise VoiceNotFoundError(
        f"no reference audio for GPT-SoVITS speaker '{speaker}': put a 3-10 s WAV or MP3 and its transcript "
        f"(same name, .txt) in {folders[0]} (recording samples fills it with the best one)"
    )


def list_speakers(ctx: ProviderContext) -> dict[str, Path]:
    """speaker -> folder, profile folders shadowing the household's."""
    found: dict[str, Path] = {}
    for voices in reversed(ctx.voices_dirs):
        root = voices / FOLDER
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if folder.is_dir() and is_plain_name(folder.name) and _audio_files(folder):
                    found[folder.name] = folder
    return found


def _audio_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    except OSError:
        return []


def _transcript_of(audio: Path) -> Path | None:
    for suffix in TRANSCRIPT_SUFFIXES:
        path = audio.with_suffix(suffix)
        if path.is_file():
            return path
    return None


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _tag(audio: Path, transcript: Path | None) -> str:
    parts = []
    for path in (audio, transcript) if transcript is not None else (audio,):
        try:
            stat = path.stat()
        except OSError as exc:
            raise VoiceNotFoundError(f"GPT-SoVITS reference {path} vanished while reading it: {exc}") from exc
        parts.append(f"{path.name}:{stat.st_mtime_ns:x}:{stat.st_size:x}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _check_length(audio: Path) -> None:
    """GPT-SoVITS refuses references shorter than 3 s or longer than 10 s; say so before asking it."""
    if audio.suffix.lower() != ".wav":
        return
    try:
        with wave.open(str(audio), "rb") as wav:
            seconds = wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return  # not plain PCM (float WAV, ...): the server decodes it itself
    low, high = SECONDS
    if not low <= seconds <= high:
        raise ProviderError(
            f"GPT-SoVITS reference {audio} is {seconds:.1f} s long; the server accepts {low:g}-{high:g} s: "
            "replace it with a shorter or longer sample"
        )


def mapped_path(path: Path, path_map: dict[str, str]) -> str:
    """``path`` as the server sees it: the longest matching local prefix replaced by the server's."""
    text = str(path)
    best = max((p for p in path_map if text == p.rstrip("/") or text.startswith(p.rstrip("/") + "/")), key=len, default=None)
    if best is None:
        return text
    remote = path_map[best]
    rest = PurePosixPath(text[len(best.rstrip("/")):].lstrip("/"))
    if "\\" in remote or re.match(r"^[A-Za-z]:", remote):
        return str(PureWindowsPath(remote, *rest.parts))
    return str(PurePosixPath(remote, *rest.parts))


class ReferenceTransfer:
    """Turns a local reference into the path the server should open: the same path, a mapped
    path on a shared folder, or the path the reference receiver stored an upload under."""

    def __init__(self) -> None:
        self._uploaded: dict[tuple[str, str], str] = {}  # (upload url, reference tag) -> server path
        self._lock = threading.Lock()

    def server_path(self, ref: Reference, settings: SovitsSettings) -> str:
        if settings.reference_transfer == "path":
            return mapped_path(ref.audio, settings.path_map)
        if settings.upload_url is None:
            raise ProviderUnavailableError(
                "tts.sovits.referenceTransfer is 'upload' but tts.sovits.uploadUrl is not set: start the reference "
                "receiver on the server's machine (python receiver.py --dir ...) and put its address there"
            )
        key = (str(settings.upload_url), ref.tag)
        with self._lock:
            known = self._uploaded.get(key)
        if known is not None:
            return known
        path = self._upload(ref, settings)
        with self._lock:
            self._uploaded[key] = path
        return path

    def forget(self, settings: SovitsSettings) -> None:
        """The server failed: upload again next time, in case the receiver lost the file."""
        with self._lock:
            for key in [k for k in self._uploaded if k[0] == str(settings.upload_url)]:
                del self._uploaded[key]

    def _upload(self, ref: Reference, settings: SovitsSettings) -> str:
        try:
            data = ref.audio.read_bytes()
        except OSError as exc:
            raise VoiceNotFoundError(f"cannot read GPT-SoVITS reference {ref.audio}: {exc}") from exc
        if len(data) > UPLOAD_LIMIT:
            raise ProviderError(f"GPT-SoVITS reference {ref.audio} is larger than {UPLOAD_LIMIT // 2**20} MB")
        name = hashlib.sha256(data).hexdigest()[:32] + ref.audio.suffix.lower()
        url = f"{str(settings.upload_url).rstrip('/')}/references/{name}"
        request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
        if settings.upload_token is not None:
            request.add_header("Authorization", f"Bearer {settings.upload_token.get_secret_value()}")
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout) as response:
                answer = json.loads(response.read(65536) or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read(2048).decode("utf-8", "replace").strip()
            raise ProviderError(f"the reference receiver at {settings.upload_url} refused the upload (HTTP {exc.code}): {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProviderUnavailableError(
                f"cannot upload the GPT-SoVITS reference to {settings.upload_url}: {reason} (is the receiver running?)"
            ) from exc
        except ValueError as exc:
            raise ProviderError(f"the reference receiver at {settings.upload_url} answered with something that is not JSON") from exc
        path = answer.get("path") if isinstance(answer, dict) else None
        if not isinstance(path, str) or not path:
            raise ProviderError(f"the reference receiver at {settings.upload_url} did not say where it stored the file")
        log.info("uploaded GPT-SoVITS reference %s to %s as %s", ref.audio.name, settings.upload_url, path)
        return path

"""A profile with a GPT-SoVITS reference (real speech), and the fake GPT-SoVITS server in a thread."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from providers.base import ProviderContext
from providers.sovits.engine import SovitsProvider
from tests.contexts import home_context
from tests.fake_sovits import FakeOptions, FakeSovits
from tests.speech import OWNER_RATE, owner

REFERENCE_TEXT = "The kitchen radio plays softly while the kettle starts to boil for tea."


def reference_audio(seconds: float | None = None) -> np.ndarray:
    """The owner saying REFERENCE_TEXT (about 4.5 s), looped or cut to ``seconds``."""
    audio = owner(REFERENCE_TEXT)
    if seconds is not None:
        audio = np.resize(audio, int(seconds * OWNER_RATE))
    return audio


def write_reference(folder: Path, name: str = "sample-1", transcript: str | None = REFERENCE_TEXT,
                    seconds: float | None = None, kind: str = "wav") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{kind}"
    if kind == "wav":
        pcm = (reference_audio(seconds) * 32767).astype(np.int16).tobytes()
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(OWNER_RATE)
            out.writeframes(pcm)
    else:
        soundfile.write(str(path), reference_audio(seconds), OWNER_RATE, format=kind.upper())
    if transcript is not None:
        path.with_suffix(".txt").write_text(transcript, encoding="utf-8")
    return path


def pcm_of(wav: bytes) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(wav), "rb") as reader:
        return reader.readframes(reader.getnframes()), reader.getframerate()


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    return tmp_path


@pytest.fixture()
def ctx(home: Path) -> ProviderContext:
    return home_context(home)


def speaker_dir(ctx: ProviderContext, speaker: str = "default") -> Path:
    return ctx.voices_dirs[0] / "sovits-reference" / speaker


@pytest.fixture()
def reference(ctx: ProviderContext) -> Path:
    return write_reference(speaker_dir(ctx))


@pytest.fixture()
def fake() -> Iterator[FakeSovits]:
    server = FakeSovits(FakeOptions()).start()
    yield server
    server.stop()


@pytest.fixture()
def fake_v1() -> Iterator[FakeSovits]:
    server = FakeSovits(FakeOptions(api="v1")).start()
    yield server
    server.stop()


@pytest.fixture()
def provider() -> Iterator[SovitsProvider]:
    engine = SovitsProvider()
    yield engine
    engine.close()

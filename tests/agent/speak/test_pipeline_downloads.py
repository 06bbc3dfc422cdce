"""The speak pipeline's one hook for catalog voices that are not installed (``voice_ready``): a
voice still downloading is answered by Piper with the code ``voice_downloading`` (even a Piper
voice: by the bundled one), downloads off by ``downloads_off``; a ready voice speaks itself."""

from __future__ import annotations

import time
from pathlib import Path

from agent.config.model import VoiceConfig
from agent.errors import ServiceError
from agent.speak.pipeline import SpeakJob, run_speak
from providers.piper.config import DEFAULT_PIPER_VOICE
from tests.agent.speak.test_pipeline import Engine, Run


def speak(run: Run, provider: str, voice: str, ready: object) -> object:
    job = SpeakJob("j1", "One. Two.", provider, voice, None, False, time.perf_counter())
    return run_speak(job, VoiceConfig(), run.ctx, run.pool, None, lambda seq, chunk: None,
                     lambda failed, reason, code: run.fallbacks.append((failed, reason)), budget=run.budget,
                     voice_ready=ready)  # type: ignore[arg-type]


def refuse(code: str):  # type: ignore[no-untyped-def]
    asked: list[tuple[str, str]] = []

    def ready(provider: str, voice: str) -> None:
        asked.append((provider, voice))
        raise ServiceError(code, f"{voice} is not here yet")

    return ready, asked


def test_a_kokoro_voice_still_downloading_is_answered_by_piper_with_the_code(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)})
    ready, asked = refuse("voice_downloading")
    result = speak(run, "kokoro", "af_heart", ready)
    assert result.provider == "piper" and result.fallback_code == "voice_downloading"  # type: ignore[attr-defined]
    assert asked == [("kokoro", "af_heart")] and run.engines["kokoro"].calls == 0
    assert "af_heart is not here yet" in result.fallback_reason  # type: ignore[attr-defined]


def test_a_piper_voice_still_downloading_is_answered_by_the_bundled_voice(tmp_path: Path) -> None:
    run = Run(tmp_path, {"piper": Engine("piper", 1)})
    ready, _ = refuse("downloads_off")
    result = speak(run, "piper", "en_US-mirror-medium", ready)
    assert result.provider == "piper" and result.fallback_code == "downloads_off"  # type: ignore[attr-defined]
    assert [settings.voice_name for _, settings, _ in run.engines["piper"].asked] == [DEFAULT_PIPER_VOICE] * 2  # two pieces


def test_a_ready_voice_speaks_itself(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)})
    result = speak(run, "kokoro", "af_heart", lambda provider, voice: None)
    assert result.provider == "kokoro" and result.fallback_code is None  # type: ignore[attr-defined]

"""Kokoro never makes a request wait for its preparation: while the fold and the timing run in a
thread of their own, the model as shipped (int8) answers; once the choice is made, it speaks.
The preparation here is a stand-in that blocks until the test lets it finish (no model needed)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from providers.kokoro import engine as kokoro_engine
from providers.kokoro.assets import ModelSource
from providers.kokoro.config import KokoroSettings
from providers.kokoro.engine import KokoroProvider, _Loaded
from providers.kokoro.prepare import Runtime
from tests.contexts import loose_context

WAIT = 10  # seconds before the test gives up (never reached when it works)


class StandIn:
    """``choose_runtime`` that blocks until released, then picks the float model."""

    def __init__(self, tmp_path: Path) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.float = Runtime(tmp_path / "model.float2.onnx", "float", 2, {"int8": 1.0, "float": 0.5})

    def __call__(self, source: ModelSource, directory: Path, optimize: str, threads: int, activity: Any = None) -> Runtime:
        self.activity = activity
        self.started.set()
        assert self.release.wait(WAIT), "the test never let the preparation finish"
        return self.float


@pytest.fixture
def provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[KokoroProvider, StandIn]:
    stand_in = StandIn(tmp_path)
    source = ModelSource(tmp_path / "kokoro-v1.0.int8.onnx", "ja0123")
    monkeypatch.setattr(kokoro_engine, "choose_runtime", stand_in)
    monkeypatch.setattr(kokoro_engine, "ready_runtime", lambda *args: None)  # nothing prepared yet
    monkeypatch.setattr(KokoroProvider, "_source", lambda self, settings, ctx: source)

    def load(self: KokoroProvider, source: ModelSource, runtime: Runtime) -> _Loaded:
        return _Loaded(source, runtime, SimpleNamespace(), SimpleNamespace())  # type: ignore[arg-type]

    monkeypatch.setattr(KokoroProvider, "_load", load)
    return KokoroProvider(), stand_in


def test_the_shipped_model_answers_while_the_preparation_runs(tmp_path: Path, provider: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    kokoro, stand_in = provider
    trimmed: list[str] = []
    monkeypatch.setattr(kokoro_engine, "release_free_memory", lambda: trimmed.append("after the switch"))
    ctx = loose_context(tmp_path, (tmp_path / "voices",))
    settings = KokoroSettings()
    try:
        first = kokoro._model(settings, ctx)
        assert (first.runtime.variant, first.runtime.path.name) == ("int8", "kokoro-v1.0.int8.onnx")
        assert stand_in.started.wait(WAIT) and kokoro.preparing()
        assert stand_in.activity == kokoro.activity  # its timing watches this engine's speech
        again = kokoro._model(settings, ctx)  # a second request while it still prepares: int8 again, no wait
        assert again is first
    finally:
        stand_in.release.set()
    threads = list(kokoro._preparing.values())
    for thread in threads:
        thread.join(WAIT)
    assert not kokoro.preparing()
    assert kokoro._model(settings, ctx).runtime == stand_in.float  # switched once ready
    assert trimmed == ["after the switch"]  # the float model's load leaves freed heap behind: handed back


def test_the_cli_and_the_trainer_wait_for_the_prepared_model(tmp_path: Path, provider: Any) -> None:
    kokoro, stand_in = provider
    stand_in.release.set()
    runtime = kokoro.runtime(KokoroSettings(), loose_context(tmp_path, (tmp_path / "voices",)))
    assert runtime == stand_in.float and not kokoro.preparing()

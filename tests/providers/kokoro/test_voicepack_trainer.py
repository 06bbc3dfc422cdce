"""The voicepack trainer on a tiny dataset: parameters, dataset checks, a run, stop and resume."""

from __future__ import annotations

import csv
import json
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from pydantic import ValidationError

from providers.kokoro.config import KokoroSettings
from providers.kokoro.dataset import DatasetError, check_dataset, read_dataset
from providers.kokoro.engine import KokoroProvider
from providers.kokoro import style_descent
from providers.kokoro.spec import voicepack_memory_mb
from providers.kokoro.train_params import FAST_PEAK_MB, LOW_PEAK_MB, VoicepackParams, recompute_steps
from providers.kokoro.voicepack_trainer import KokoroVoicepackTrainer, _load_checkpoint, _Search
from providers.kokoro.voices import load_voicepack
from providers.training import Progress, TrainResult, TrainSpec
from tests.contexts import home_context
from tests.providers.kokoro.models import install_models, prepared_models
from tests.speech import OWNER_RATE, owner

LINES = ["Please turn off the lights now.", "The train leaves in ten minutes.", "We need milk and a dozen eggs."]
SMALL = {"epochs": 3, "checkEvery": 2, "lines": 1, "maxSamples": 3, "minSamples": 3, "minMinutes": 0, "baseVoice": "jm_kumo", "learningRate": 0.3}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trainer-home")
    (root / "profiles" / "default").mkdir(parents=True)
    install_models(prepared_models(tmp_path_factory), root)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Piper voice as the owner, exported the way the record path does (file|transcript)."""
    folder = tmp_path_factory.mktemp("dataset")
    rows = []
    for index, text in enumerate(LINES):
        soundfile.write(folder / f"s{index}.wav", owner(text), OWNER_RATE)
        rows.append([f"s{index}.wav", text])
    with (folder / "metadata.csv").open("w", newline="") as handle:
        csv.writer(handle, delimiter="|").writerows(rows)
    return folder


@pytest.fixture(scope="module")
def agent_home(home: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VOICE_AGENT_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def straight(agent_home: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, list[Progress], Path]:
    """One uninterrupted small run, shared by the tests that look at its results."""
    root = tmp_path_factory.mktemp("straight")
    reports: list[Progress] = []
    result = KokoroVoicepackTrainer().run(spec(dataset, root, agent_home, seed=5), reports.append, lambda: False)
    return result, reports, root


def spec(dataset: Path, root: Path, home: Path, seed: int = 0) -> TrainSpec:
    return TrainSpec(
        profile="default", speaker="owner", dataset_dir=dataset, output_dir=root / "out",
        checkpoint_dir=root / "checkpoint", params=dict(SMALL), ctx=home_context(home), seed=seed,
        memory_mb=FAST_PEAK_MB,  # room for whole steps (faster); tests/providers/kokoro/test_recompute.py has the pieces
    )


def test_params_have_the_seeds_ranges() -> None:
    defaults = VoicepackParams()
    assert (defaults.base_voice, defaults.device, defaults.min_minutes, defaults.min_samples) == ("auto", "cpu", 5.0, 10)
    assert VoicepackParams.model_validate({"learningRate": 0.1}).learning_rate == 0.1
    assert VoicepackParams.model_validate(VoicepackParams(epochs=7).model_dump()).epochs == 7  # the runner round-trips
    for bad in ({"epochs": 0}, {"learningRate": 0}, {"learningRate": 3}, {"device": "tpu"}, {"maxSamples": 0}, {"steps": 5}):
        with pytest.raises(ValidationError):
            VoicepackParams.model_validate(bad)


def test_memory_setting_trades_cpu_for_memory() -> None:
    auto, low, fast = (VoicepackParams(memory=m) for m in ("auto", "low", "fast"))  # type: ignore[arg-type]
    assert VoicepackParams().memory == "auto"
    assert [recompute_steps(auto, mb) for mb in (None, FAST_PEAK_MB - 1, FAST_PEAK_MB)] == [True, True, False]
    assert recompute_steps(low, 10**6) and not recompute_steps(fast, 1)
    # auto declares what the low way needs: a job is never refused for a need it would not have
    assert [voicepack_memory_mb(p) for p in (auto, low, fast)] == [LOW_PEAK_MB, LOW_PEAK_MB, FAST_PEAK_MB]
    assert LOW_PEAK_MB < FAST_PEAK_MB


@pytest.mark.parametrize(("low", "segments"), [(False, 0), (True, style_descent.RECOMPUTE_SEGMENTS)])
def test_a_low_memory_descent_is_recomputed_in_pieces(low: bool, segments: int, monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, object] = {}
    monkeypatch.setattr(style_descent, "StyleDescent", lambda *args, **keys: made.update(keys) or "descent")
    search = object.__new__(_Search)
    search.engine = types.SimpleNamespace(float_model=lambda settings, ctx: Path("model.onnx"))  # type: ignore[assignment]
    search.settings, search.ctx, search.spread = None, None, np.ones(256)  # type: ignore[assignment]
    search.scorer = types.SimpleNamespace(target=None, embedder=None, target_pitch=100.0)  # type: ignore[assignment]
    assert search.descent(np.zeros((510, 1, 256)), VoicepackParams(), low) == "descent"
    assert made["segments"] == segments


def test_the_pitch_aim_is_checkpointed(tmp_path: Path) -> None:
    from providers.kokoro.similarity import Score
    from providers.kokoro.style_descent import DescentState
    from providers.kokoro.voicepack_trainer import _checkpoint

    root = tmp_path / "job"
    job = TrainSpec(profile="default", speaker="owner", dataset_dir=tmp_path, output_dir=root / "out",
                    checkpoint_dir=root, params={}, ctx=home_context(tmp_path))
    root.mkdir()
    state = DescentState(np.ones(256, np.float32), np.zeros(256, np.float32), np.zeros(256, np.float32), 3, -0.125)
    _checkpoint(job, np.zeros((510, 1, 256), np.float32), 3, Score(0.5, 0.5, 0.5), {"voice": "jm_kumo", "target": 0.4}, state)
    saved = _load_checkpoint(root)
    assert saved is not None and saved[2].pitch_aim == -0.125 and saved[2].adam_steps == 3


def test_the_pitch_aim_moves_against_what_the_checks_heard() -> None:
    descent = object.__new__(style_descent.StyleDescent)
    descent._pitch_aim = 0.0
    gain = style_descent.PITCH_AIM_GAIN
    assert 0 < gain < 1  # a part of what was heard: the F0 follows over the next steps; the whole overshot
    descent.aim_pitch(0.1)  # heard a tenth of an octave high: aim lower
    assert descent._pitch_aim == pytest.approx(-0.1 * gain)
    descent.aim_pitch(0.05)  # still high: lower again (the corrections add up)
    assert descent._pitch_aim == pytest.approx(-0.15 * gain)
    descent.aim_pitch(-0.02)
    assert descent._pitch_aim == pytest.approx(-0.13 * gain)
    descent.aim_pitch(-5.0)  # a misreading moves it at most MAX_PITCH_AIM
    assert descent._pitch_aim == style_descent.MAX_PITCH_AIM
    descent.aim_pitch(5.0)
    assert descent._pitch_aim == -style_descent.MAX_PITCH_AIM


def test_too_little_data_is_refused_with_what_is_missing(dataset: Path, tmp_path: Path) -> None:
    samples = read_dataset(dataset)
    assert [s.transcript for s in samples] == LINES and all(s.seconds > 1 for s in samples)
    with pytest.raises(DatasetError, match=r"3 WAV files, need at least 10; 0\.\d minutes of audio, need at least 5\. Record more"):
        check_dataset(samples, VoicepackParams(), dataset)
    check_dataset(samples, VoicepackParams(minSamples=3, minMinutes=0.05), dataset)
    with pytest.raises(DatasetError, match="samples export kokoro"):
        read_dataset(tmp_path / "nothing")


def test_a_damaged_checkpoint_means_starting_afresh(tmp_path: Path) -> None:
    pack = np.zeros((510, 1, 256), np.float32)
    np.save(tmp_path / "best.npy", pack)
    np.savez(tmp_path / "descent-4.npz", offset=np.ones(256, np.float32), adam_mean=np.zeros(256, np.float32),
             adam_square=np.zeros(256, np.float32), adam_steps=np.array(4))
    state = {"step": 4, "start": {"voice": "jm_kumo"}, "descent": "descent-4.npz"}
    (tmp_path / "state.json").write_text(json.dumps(state))
    saved = _load_checkpoint(tmp_path)
    assert saved is not None and saved[2].adam_steps == 4 and float(saved[2].offset.sum()) == 256
    assert saved[2].pitch_aim == 0.0  # a checkpoint from before the pitch aim
    assert _load_checkpoint(tmp_path / "none") is None
    damages = [
        lambda: (tmp_path / "state.json").write_text("{not json"),
        lambda: (tmp_path / "state.json").write_text(json.dumps({**state, "start": "jm_kumo"})),
        lambda: (tmp_path / "state.json").write_text(json.dumps({"step": 4, "sigma": 0.05, "start": {"voice": "a"}})),  # the random walk's
        lambda: (tmp_path / "descent-4.npz").write_bytes(b"PK\x03\x04 truncated"),
        lambda: np.savez(tmp_path / "descent-4.npz", offset=np.ones(3), adam_mean=np.ones(3), adam_square=np.ones(3), adam_steps=np.array(1)),
        lambda: (tmp_path / "best.npy").write_bytes(b"garbage"),
        lambda: np.save(tmp_path / "best.npy", np.zeros((3, 256), np.float32)),
    ]
    for damage in damages:
        (tmp_path / "state.json").write_text(json.dumps(state))
        np.save(tmp_path / "best.npy", pack)
        np.savez(tmp_path / "descent-4.npz", offset=np.ones(256, np.float32), adam_mean=np.zeros(256, np.float32),
                 adam_square=np.zeros(256, np.float32), adam_steps=np.array(4))
        damage()
        assert _load_checkpoint(tmp_path) is None


@pytest.mark.slow
def test_the_kept_voice_was_scored_with_its_pitch_heard_on_the_wide_lines(
        agent_home: Path, dataset: Path, straight: tuple[TrainResult, list[Progress], Path]) -> None:
    result, _, root = straight
    search = _Search.build(spec(dataset, root, agent_home), VoicepackParams.model_validate(SMALL), read_dataset(dataset),
                           lambda progress: None)
    kept = load_voicepack(result.outputs[0])
    wide, narrow = search.kept_score(kept), search.score(kept)
    assert result.metrics["score"] == pytest.approx(wide.total, abs=1e-6)
    # the one check line against the owner's three sentences: a narrow score kept would differ here
    # (0.003 in a run; equal only when the check line happens to be the median sentence)
    assert wide.target == narrow.target and (wide.octaves == narrow.octaves or wide.total != pytest.approx(narrow.total, abs=1e-6))


@pytest.mark.slow
def test_training_writes_a_voicepack_the_provider_speaks_with(agent_home: Path, straight: tuple[TrainResult, list[Progress], Path]) -> None:
    result, reports, root = straight

    assert result.status == "finished"
    assert [p.name for p in result.outputs] == ["owner.npy", "owner.pt"]
    pack = load_voicepack(result.outputs[0])
    np.testing.assert_array_equal(pack, load_voicepack(result.outputs[1]))
    assert result.metrics["steps"] == 3 and result.metrics["similarity"] >= result.metrics["start_similarity"]
    steps = [p for p in reports if p.stage == "training"]
    assert [p.step for p in steps] == [1, 2, 3] and reports[-1].stage == "exporting"
    bests = [p.best for p in steps]
    assert bests == sorted(bests)  # the best score never goes down
    state = json.loads((root / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3 and state["start"]["voice"] == "jm_kumo"

    ctx = home_context(agent_home)
    settings = KokoroSettings.model_validate({"langCode": "a", "useCustomVoicepack": True, "voicepackPath": str(result.outputs[0])})
    chunks = list(KokoroProvider().synthesize("My own voice.", settings, ctx))
    assert chunks and chunks[0].sample_rate == 24000 and sum(c.seconds for c in chunks) > 0.5


@pytest.mark.slow
def test_stopped_run_resumes_to_the_same_voicepack(
    agent_home: Path, dataset: Path, tmp_path: Path, straight: tuple[TrainResult, list[Progress], Path]
) -> None:
    steps: list[int] = []
    paused = KokoroVoicepackTrainer().run(
        spec(dataset, tmp_path / "b", agent_home, seed=5), lambda p: steps.append(p.step), lambda: max(steps, default=0) >= 1
    )
    assert paused.status == "stopped" and paused.outputs == []
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["step"] == 1
    after: list[Progress] = []
    resumed = KokoroVoicepackTrainer().run(spec(dataset, tmp_path / "b", agent_home, seed=5), after.append, lambda: False)

    assert resumed.status == "finished" and resumed.metrics["steps"] == 3
    # it went on from the saved step (a run that ignored the checkpoint would say steps 1, 2, 3)...
    assert [p.step for p in after if p.stage == "training"] == [2, 3]
    # ...to exactly the voicepack of the run that was never interrupted
    np.testing.assert_array_equal(load_voicepack(resumed.outputs[0]), load_voicepack(straight[0].outputs[0]))

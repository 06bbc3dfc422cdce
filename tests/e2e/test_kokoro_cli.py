"""``voice-agent kokoro ...`` as a user runs it: prepare, train a voicepack, switch to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_home
from tests.e2e.kokoro_job import NO_MEMORY_CHECK, voicepack_dataset
from tests.providers.kokoro.models import install_models, prepared_models

pytestmark = pytest.mark.slow
LINES = ("Please turn off the lights now.", "The train leaves in ten minutes.", "We need milk and a dozen eggs.")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_home(tmp_path_factory.mktemp("kokoro-cli"))
    install_models(prepared_models(tmp_path_factory), root)
    voicepack_dataset(root, "owner", LINES)
    return root


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_AGENT_HOME": str(home), **NO_MEMORY_CHECK}
    return subprocess.run([sys.executable, "-m", "agent", "kokoro", *args], check=False, env=env, cwd=home,
                          capture_output=True, text=True, timeout=600)


def test_prepare_reports_what_runs_here(home: Path) -> None:
    done = cli(home, "prepare")
    assert done.returncode == 0, done.stderr
    assert "Kokoro runs" in done.stdout and "threads; calibration: float" in done.stdout


def test_too_little_data_is_a_clear_error(home: Path) -> None:
    status = home / "logs" / "run" / "kokoro-training-owner.json"
    before = status.read_bytes() if status.exists() else None  # a finished run of another test may have left one
    done = cli(home, "train-voicepack", "--speaker", "owner", "--epochs", "1")
    assert done.returncode == 1
    assert "3 WAV files, need at least 10" in done.stderr and "Record more samples" in done.stderr
    # refused before a job exists (issue 13): no job to fail, no status file written or overwritten
    assert (status.read_bytes() if status.exists() else None) == before


def test_missing_dataset_says_how_to_export(home: Path) -> None:
    done = cli(home, "train-voicepack", "--speaker", "nobody")
    assert done.returncode == 1 and "voice-agent samples export kokoro --speaker nobody" in done.stderr


def test_train_voicepack_and_switch_the_profile_to_it(home: Path) -> None:
    done = cli(home, "train-voicepack", "--speaker", "owner", "--epochs", "2", "--base-voice", "jm_kumo",
               "--memory", "fast", "--min-minutes", "0", "--min-samples", "3", "--use")

    assert done.returncode == 0, done.stderr
    pack = home / "profiles" / "default" / "out" / "voices" / "kokoro-voicepacks" / "owner" / "owner.npy"
    assert pack.is_file() and f"voicepack {pack}" in done.stdout
    assert "training:" in done.stderr and "| 2/2 [" in done.stderr  # the progress bar (tqdm)
    status = json.loads((home / "logs" / "run" / "kokoro-training-owner.json").read_text())
    assert status["state"] == "finished" and status["step"] == 2 and status["outputs"][0] == str(pack)
    log = (home / "logs" / "run" / "kokoro-training-owner.log").read_text()
    assert "training 2/2" in log and "memory fast" in log and "steps kept whole" in log
    config = json.loads((home / "profiles" / "default" / "etc" / "voice.json").read_text())
    assert config["tts"]["provider"] == "kokoro"
    assert {"useCustomVoicepack": True, "voicepackPath": str(pack), "langCode": "a"}.items() <= config["tts"]["kokoro"].items()
    check = subprocess.run([sys.executable, "-m", "agent", "config"], check=False, env={**os.environ, "VOICE_AGENT_HOME": str(home)},
                           cwd=home, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and json.loads(check.stdout)["tts"]["kokoro"]["voicepackPath"] == str(pack)

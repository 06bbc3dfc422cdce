"""The `voice-agent` command as a user runs it, against the running agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess


def cli(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_AGENT_HOME": str(agent.home), "VOICE_AGENT_MQTT_PORT": str(agent.port)}
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_say_writes_the_wav(running_agent: AgentProcess, tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = cli(running_agent, "say", "Hello from the voice agent", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "piper/en_US-joe-medium" in result.stdout
    assert_speech(out.read_bytes(), min_seconds=1.0)


def test_say_streamed_joins_the_sentences(running_agent: AgentProcess, tmp_path: Path) -> None:
    out = tmp_path / "stream.wav"
    result = cli(running_agent, "say", "First part. Second part.", "--stream", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert_speech(out.read_bytes(), min_seconds=1.0)


def test_say_reports_errors(running_agent: AgentProcess, tmp_path: Path) -> None:
    result = cli(running_agent, "say", "Hi", "-p", "nobody", "-o", str(tmp_path / "x.wav"))
    assert result.returncode == 1
    assert "unknown_profile" in result.stderr
    assert not (tmp_path / "x.wav").exists()


def test_say_without_agent_times_out_clearly(running_agent: AgentProcess, tmp_path: Path) -> None:
    env_home = running_agent.home
    result = subprocess.run(
        [sys.executable, "-m", "agent", "say", "Hi", "--timeout", "1", "-o", str(tmp_path / "x.wav")],
        env={**os.environ, "VOICE_AGENT_HOME": str(env_home), "VOICE_AGENT_MQTT_PORT": "1",
             "VOICE_AGENT_EMBEDDED_BROKER": "never"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and "cannot reach the MQTT broker" in result.stderr


def test_voices_and_config_check(running_agent: AgentProcess) -> None:
    voices = cli(running_agent, "voices")
    assert voices.returncode == 0 and "en_US-joe-medium" in voices.stdout
    config = cli(running_agent, "config", "-p", "default")
    assert config.returncode == 0
    assert json.loads(config.stdout)["tts"]["provider"] == "piper"
    bad = running_agent.home / "profiles" / "kitchen" / "etc" / "voice.json"
    bad.write_text('{"tts": {"provider": "nope"}}')
    check = cli(running_agent, "config", "-p", "kitchen")
    assert check.returncode == 1 and "tts.provider" in check.stderr


def test_samples_take_the_profile_before_or_after_the_action(running_agent: AgentProcess) -> None:
    """The running agent has profiles default and kitchen; the kitchen's export goes to its own folder."""
    for args in (("samples", "-p", "kitchen", "readiness"), ("samples", "readiness", "--profile", "kitchen"),
                 ("samples", "readiness")):
        result = cli(running_agent, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert set(json.loads(result.stdout)) >= {"kokoro", "rvc", "sovits"}
    missing = cli(running_agent, "samples", "-p", "nobody", "readiness")
    assert missing.returncode == 1 and "no profile 'nobody'" in missing.stderr
    after = cli(running_agent, "samples", "readiness", "-p", "nobody")
    assert after.returncode == 1 and "no profile 'nobody'" in after.stderr

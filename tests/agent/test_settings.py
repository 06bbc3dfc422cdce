from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest
from agent.settings import SettingsError, default_client_id, load_settings


def test_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv("VOICE_AGENT_MQTT_HOST", "broker.lan")
    monkeypatch.setenv("VOICE_AGENT_MQTT_PORT", "8883")
    monkeypatch.setenv("VOICE_AGENT_MQTT_USERNAME", "va")
    monkeypatch.setenv("VOICE_AGENT_MQTT_PASSWORD", "pw")
    monkeypatch.setenv("VOICE_AGENT_BASE_TOPIC", "house/voice/")
    settings = load_settings()
    assert settings.home == tmp_path and settings.mqtt_host == "broker.lan" and settings.mqtt_port == 8883
    assert settings.mqtt_username == "va" and settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "pw" and "pw" not in repr(settings)
    assert settings.base_topic == "house/voice"


def test_settings_file_fills_what_the_environment_leaves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "agent.env").write_text("VOICE_AGENT_MQTT_PORT=1999\nVOICE_AGENT_QUEUE_DEPTH=3\n")
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv("VOICE_AGENT_QUEUE_DEPTH", "5")
    settings = load_settings()
    assert settings.mqtt_port == 1999 and settings.queue_depth == 5


@pytest.mark.parametrize(("name", "value"), [("VOICE_AGENT_MQTT_PORT", "70000"), ("VOICE_AGENT_BASE_TOPIC", "a/#")])
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^{name}: "):
        load_settings()


# -- the client id: one per home and host, so agents never take each other's session ---------------

def test_the_default_client_id_follows_home_and_host(tmp_path: Path) -> None:
    one = default_client_id("homeserver", tmp_path / "one")
    assert re.fullmatch(r"voice-agent-homeserver-[0-9a-f]{8}", one)
    assert default_client_id("homeserver", tmp_path / "one") == one  # the same home keeps its id
    assert default_client_id("homeserver", tmp_path / "two") != one
    assert default_client_id("other", tmp_path / "one") != one
    assert default_client_id("other", tmp_path / "one").endswith(one[-8:])  # the home's part is the home's


def test_the_host_part_is_plain_and_bounded(tmp_path: Path) -> None:
    assert default_client_id("my host.lan/x+#", tmp_path).startswith("voice-agent-my-host-lan-x---")
    assert len(default_client_id("h" * 300, tmp_path)) == len("voice-agent-") + 32 + 1 + 8
    assert default_client_id("", tmp_path).startswith("voice-agent-host-")


def test_settings_pick_the_default_unless_one_is_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.delenv("VOICE_AGENT_MQTT_CLIENT_ID", raising=False)
    assert load_settings().mqtt_client_id == default_client_id(socket.gethostname(), tmp_path)
    monkeypatch.setenv("VOICE_AGENT_MQTT_CLIENT_ID", "kitchen-agent")
    assert load_settings().mqtt_client_id == "kitchen-agent"
    monkeypatch.setenv("VOICE_AGENT_MQTT_CLIENT_ID", "")
    assert load_settings().mqtt_client_id == default_client_id(socket.gethostname(), tmp_path)


# -- JSON settings and TLS files: one line naming the setting ------------------------------------

@pytest.mark.parametrize("name", ["VOICE_AGENT_HERMES_SITES", "VOICE_AGENT_GPU_HOGS", "VOICE_AGENT_EXTRA_TRAINERS"])
def test_json_settings_that_are_not_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv(name, "kitchen=default")
    with pytest.raises(SettingsError, match=f"^{name}: not JSON") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_json_settings_from_the_environment_and_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv("VOICE_AGENT_HERMES_SITES", '{"kitchen": "default"}')
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "agent.env").write_text('VOICE_AGENT_GPU_HOGS=["ollama", "comfyui"]\n')
    settings = load_settings()
    assert settings.hermes_sites == {"kitchen": "default"} and settings.gpu_hogs == ["ollama", "comfyui"]
    monkeypatch.setenv("VOICE_AGENT_HERMES_SITES", '["kitchen"]')  # JSON, but not the right shape
    with pytest.raises(SettingsError, match="^VOICE_AGENT_HERMES_SITES: "):
        load_settings()


def pem_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=voice-agent",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_files_are_loaded_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    cert, key = pem_pair(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_CA", str(cert))  # a self-signed certificate is its own CA
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_CERT", str(cert))
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_KEY", str(key))
    assert load_settings().mqtt_tls_key == key
    monkeypatch.delenv("VOICE_AGENT_MQTT_TLS_KEY")
    (tmp_path / "both.pem").write_text(cert.read_text() + key.read_text())
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_CERT", str(tmp_path / "both.pem"))  # the key in the certificate's file
    assert load_settings().mqtt_tls_cert == tmp_path / "both.pem"
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_CA", str(garbage))
    with pytest.raises(SettingsError, match="^VOICE_AGENT_MQTT_TLS_CA: .* is not a PEM CA bundle"):
        load_settings()
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_CA", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_CERT", str(cert))  # a certificate without its key
    with pytest.raises(SettingsError, match="^VOICE_AGENT_MQTT_TLS_CERT / VOICE_AGENT_MQTT_TLS_KEY: not a PEM client"):
        load_settings()
    monkeypatch.setenv("VOICE_AGENT_MQTT_TLS_KEY", str(garbage))
    with pytest.raises(SettingsError, match="^VOICE_AGENT_MQTT_TLS_CERT / VOICE_AGENT_MQTT_TLS_KEY"):
        load_settings()

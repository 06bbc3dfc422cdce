"""Every paho client the agent makes (agent/mqtt/connect.py): MQTT 5 or 3.1.1 with a clean session,
the login, TLS with the household's CA and the client's own certificate, and what stops a
connection said in words (a TLS server of the test's own on a free port)."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.mqtt import connect
from agent.mqtt.connect import MQTT5, MQTT311, UNSUPPORTED_PROTOCOL, new_client, tls_context, why_no_connection
from agent.settings import AgentSettings
from tests.agent.test_settings import pem_pair
from tests.mosquitto import free_port


def test_the_agents_own_clients_speak_mqtt5_and_the_clis_3_1_1_with_a_clean_session(tmp_path: Path) -> None:
    settings = AgentSettings(home=tmp_path)
    five = new_client(settings, "agent-7", MQTT5)
    assert five._protocol == MQTT5 and five._client_id == b"agent-7"
    cli = new_client(settings, "cli-1")
    assert cli._protocol == MQTT311 and cli._clean_session is True and cli._client_id == b"cli-1"
    assert UNSUPPORTED_PROTOCOL == 132  # CONNACK "unsupported protocol version"


def test_the_login_is_set_when_a_user_name_is(tmp_path: Path) -> None:
    assert new_client(AgentSettings(home=tmp_path, mqtt_password=SecretStr("pw")), "a")._username is None
    logged = new_client(AgentSettings(home=tmp_path, mqtt_username="desk", mqtt_password=SecretStr("pw")), "a", MQTT5)
    assert (logged._username, logged._password) == (b"desk", b"pw")
    bare = new_client(AgentSettings(home=tmp_path, mqtt_username="desk"), "a")
    assert (bare._username, bare._password) == (b"desk", None)


@pytest.fixture
def pems(tmp_path: Path) -> tuple[Path, Path]:
    return pem_pair(tmp_path)


def test_tls_uses_the_ca_given_and_checks_the_broker(tmp_path: Path, pems: tuple[Path, Path]) -> None:
    cert, _ = pems
    assert new_client(AgentSettings(home=tmp_path), "a")._ssl_context is None
    settings = AgentSettings(home=tmp_path, mqtt_tls=True, mqtt_tls_ca=cert)
    context = new_client(settings, "a", MQTT5)._ssl_context
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "voice-agent"),),)]
    system = tls_context(AgentSettings(home=tmp_path, mqtt_tls=True))
    assert ((("commonName", "voice-agent"),),) not in [ca["subject"] for ca in system.get_ca_certs()]


def test_the_clients_certificate_takes_its_key_from_its_own_file_unless_given(tmp_path: Path, pems: tuple[Path, Path]) -> None:
    cert, key = pems
    tls_context(AgentSettings(home=tmp_path, mqtt_tls=True, mqtt_tls_ca=cert, mqtt_tls_cert=cert, mqtt_tls_key=key))
    both = tmp_path / "both.pem"
    both.write_text(cert.read_text() + key.read_text())
    settings = AgentSettings(home=tmp_path, mqtt_tls=True, mqtt_tls_ca=cert, mqtt_tls_cert=both)
    tls_context(settings)
    with pytest.raises(ssl.SSLError):  # no key beside the certificate: its own file was read for it (the
        tls_context(settings.model_copy(update={"mqtt_tls_cert": cert}))  # settings refuse this at load)


class Listener:
    """A server on a free port: it takes each connection, with TLS over ``cert`` when given."""

    def __init__(self, cert: tuple[Path, Path] | None = None, garbage: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.context: ssl.SSLContext | None = None
        self.garbage = garbage
        if cert is not None:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(str(cert[0]), str(cert[1]))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.garbage:
                    conn.sendall(b"HTTP/1.0 400 nope\r\n\r\n" * 20)
                elif self.context is not None:
                    self.context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listening(request: pytest.FixtureRequest) -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for one in made:
        one.close()


def san_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    import subprocess

    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run([shutil.which("openssl") or "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_nobody_listening_is_said_with_host_and_port(tmp_path: Path) -> None:
    port = free_port()
    said = why_no_connection(AgentSettings(home=tmp_path, mqtt_port=port))
    assert said.startswith(f"cannot reach 127.0.0.1:{port}: ") and "refused" in said.lower()


@pytest.mark.parametrize(("error", "words"), [(OSError(113, "No route to host"), "No route to host"),
                                              (TimeoutError("timed out"), "timed out")])
def test_an_unreachable_broker_is_tried_for_3_s_and_said_in_its_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, words: str) -> None:
    tried: list[object] = []

    def create_connection(address: object, timeout: object = None) -> socket.socket:
        tried.append((address, timeout))
        raise error

    monkeypatch.setattr(connect.socket, "create_connection", create_connection)
    said = why_no_connection(AgentSettings(home=tmp_path, mqtt_host="broker.lan", mqtt_port=1999))
    assert said == f"cannot reach broker.lan:1999: {words}" and tried == [(("broker.lan", 1999), 3.0)]
    why_no_connection(AgentSettings(home=tmp_path, mqtt_host="broker.lan", mqtt_port=1999), timeout=0.5)
    assert tried[-1] == (("broker.lan", 1999), 0.5)


def test_a_broker_that_takes_the_connection_refused_the_login(tmp_path: Path, listening: list[Listener]) -> None:
    server = Listener()
    listening.append(server)
    assert why_no_connection(AgentSettings(home=tmp_path, mqtt_port=server.port)) == (
        "the broker accepts connections; it refused ours (login?)")


def test_a_trusted_tls_broker_is_not_the_problem(tmp_path: Path, listening: list[Listener]) -> None:
    pair = san_pair(tmp_path)
    server = Listener(pair)
    listening.append(server)
    settings = AgentSettings(home=tmp_path, mqtt_port=server.port, mqtt_tls=True, mqtt_tls_ca=pair[0])
    assert why_no_connection(settings) == "the broker accepts connections; it refused ours (login?)"


def test_an_untrusted_certificate_is_said_with_what_to_check(tmp_path: Path, listening: list[Listener],
                                                             pems: tuple[Path, Path]) -> None:
    server = Listener(san_pair(tmp_path))
    listening.append(server)
    other_ca, _ = pems
    said = why_no_connection(AgentSettings(home=tmp_path, mqtt_port=server.port, mqtt_tls=True, mqtt_tls_ca=other_ca))
    assert said.startswith("the broker's TLS certificate is not trusted: ")
    assert "self-signed" in said or "unable to get local issuer" in said or "self signed" in said
    assert said.endswith(" (check VOICE_AGENT_MQTT_TLS_CA and the host name)")


def test_tls_to_a_plain_server_is_a_tls_failure(tmp_path: Path, listening: list[Listener], pems: tuple[Path, Path]) -> None:
    server = Listener(garbage=True)
    listening.append(server)
    said = why_no_connection(AgentSettings(home=tmp_path, mqtt_port=server.port, mqtt_tls=True, mqtt_tls_ca=pems[0]))
    assert said.startswith("TLS failed: ") and said != "TLS failed: ", said
    assert "[SSL" not in said and "_ssl.c" not in said, said  # OpenSSL's reason alone (WRONG_VERSION_NUMBER)

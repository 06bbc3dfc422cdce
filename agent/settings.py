"""Agent settings: how to reach the broker, where data lives, request limits.

Per-voice behaviour lives in ``voice.json`` (see ``agent.config.model``); these settings
are about the process itself and come from ``VOICE_AGENT_*`` environment variables or an
optional dotenv-style settings file (``VOICE_AGENT_SETTINGS_FILE``, default
``$VOICE_AGENT_HOME/etc/agent.env``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import socket
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.nodes.state import check_node_name, default_node_name
from providers.common.onnx_arena import ArenaMode


MIN_TOKEN_CHARS = 24  # off loopback: a token this long and random is beyond guessing over a network


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICE_AGENT_", extra="forbid")

    home: Path = Field(default_factory=Path.cwd, description="Directory holding etc/ and profiles/.")
    mqtt_host: str = Field("127.0.0.1", description="MQTT broker host.")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="MQTT broker port.")
    mqtt_username: str | None = Field(None, description="MQTT user name.")
    mqtt_password: SecretStr | None = Field(None, description="MQTT password.")
    mqtt_tls: bool = Field(False, description="Connect with TLS.")
    mqtt_tls_ca: Path | None = Field(None, description="CA bundle for TLS (system store when unset).")
    mqtt_tls_cert: Path | None = Field(None, description="Client certificate for TLS (mTLS), PEM.")
    mqtt_tls_key: Path | None = Field(None, description="Its private key, PEM (the certificate's file when unset).")
    mqtt_client_id: str = Field(
        "", description="MQTT client id; empty: voice-agent-<host>-<hash of the home> (see default_client_id)."
    )
    mqtt_keepalive: int = Field(30, ge=5, le=3600, description="MQTT keepalive seconds.")
    base_topic: str = Field("voice", description="Root of every topic the agent uses.")
    embedded_broker: Literal["auto", "never"] = Field(
        "auto",
        description="auto: start an embedded broker on 127.0.0.1 when none answers at a local address.",
    )
    max_request_bytes: int = Field(64 * 1024, ge=256, description="Largest accepted JSON request.")
    max_text_chars: int = Field(5000, ge=1, description="Longest text accepted by speak.")
    max_audio_seconds: float = Field(
        300.0, gt=0, le=86400, description="Most audio one speak request may make (seconds); more: 'audio_too_long'."
    )
    queue_depth: int = Field(8, ge=1, le=1000, description="Speak requests per profile that may wait behind the one being spoken; more get 'busy'.")
    max_audio_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest accepted recording payload.")
    record_queue_depth: int = Field(16, ge=1, le=1000, description="Recordings waiting to be scored before 'busy'.")
    analysis_idle_seconds: float = Field(
        120.0, ge=0, description="Seconds without recordings after which the analysis process (about 850 MB with its "
                                 "models) exits, to start again on the next one; 0 keeps it for the agent's life.")
    speak_arena: ArenaMode = Field(
        "idle", description="ONNX Runtime's buffer memory of the Piper and Kokoro voices (about 100 MB for Piper after a "
                            "sentence, several hundred for Kokoro): idle = kept while speaking, handed back "
                            "speak_release_seconds after the last request; keep = kept for the next sentence always "
                            "(fastest); off = no arena (least memory, every sentence slower).")
    onnx_spinning: bool = Field(
        False, description="ONNX Runtime's threads (Piper, Kokoro) spin while waiting for the next operator: faster on "
                           "idle cores (wyoming-piper's default), slower when other work shares the CPU. true for a "
                           "machine that is the agent's own.")
    speak_release_seconds: float = Field(
        30.0, gt=0, description="Seconds without speech after which (speak_arena idle) the voices hand their buffer "
                                "memory back; the next request faults it in again.")
    record_queue_bytes: int = Field(
        64 * 1024 * 1024, ge=1024,
        description="Bytes of recordings waiting or being scored before 'busy' (one alone is always taken).",
    )
    stream_inbox_bytes: int = Field(
        16 * 1024 * 1024, ge=1024,
        description="Bytes of stream and Hermes frames waiting to be cut; more are dropped (a stream.error event).",
    )
    command_queue_depth: int = Field(
        16, ge=1, le=1000, description="Sample, training and server commands waiting per service before 'busy'."
    )
    hermes_sites: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description='Hermes satellites to record, site id -> profile, as JSON: {"kitchen": "default"}.',
    )
    idle_window: str = Field("01:00-06:00", description="Local time range when 'idle' training jobs may run.")
    idle_minutes: float = Field(10.0, ge=0, description="Minutes without speech or recordings that count as idle.")
    train_preempt_on_speech: bool = Field(True, description="Pause a GPU training job when speech is requested.")
    train_memory_check: bool = Field(
        True, description="Check a training job's memory need (its trainer's, measured) against what the machine and "
                          "the agent's MemoryMax allow before it starts: refused when it can never fit, waiting while it "
                          "does not fit now. false: start it anyway (swap, or a need known to be smaller).")
    train_vram_mb: int = Field(6000, ge=0, description="VRAM a training job needs on the GPU.")
    gpu_hogs: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["ollama"], description="Processes that may be paused for GPU work.")
    pause_gpu_hogs_for_training: bool = Field(False, description="SIGSTOP the GPU hogs while a job needs their GPU.")
    max_queued_jobs: int = Field(
        8, ge=1, le=1000, description="Training jobs queued in the home (all profiles together) before 'train' is 'busy'.",
    )
    max_train_restarts: int = Field(3, ge=0, le=20, description="Times a crashed job resumes from its checkpoint.")
    extra_trainers: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description='More trainers, provider -> "module:Class" (plugins, tests).'
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")

    # -- several machines, one household (agent/nodes, agent/blobs) ------------------------------
    node: str = Field(
        default_factory=default_node_name,
        description="This agent's name among the household's nodes (<base>/node/<node>/state): 1 to 64 letters, "
                    "digits, '_', '.' or '-'; the host name by default.",
    )
    worker: bool = Field(False, description="Take other nodes' work (training, GPU synthesis); said in the node's state.")
    sovits_url: str = Field(
        "", pattern=r"^(https?://[^\s/?#]+/?)?$",
        description="This worker's own GPT-SoVITS server (http://host:port), which makes the household's sovits "
                    "speech here (runOn.speak.sovits); empty: this node takes no sovits work.",
    )
    train_reply_files_mb: int = Field(
        32, ge=0, le=32, description="Most MB of a training job's files (a checkpoint, the trained files) a worker "
                                     "sends inside its reply; larger ones its home fetches by hash from the worker's "
                                     "blob route (its HTTP door and token on).",
    )
    blob_cache_mb: int = Field(
        10240, ge=1, description="Most MB of other nodes' files (datasets, models) kept here, fetched by hash; the "
                                 "least recently used go first.",
    )

    # -- voices fetched from a catalog (agent/voices) --------------------------------------------
    piper_voices_url: str = Field(
        "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0/",
        description="Where Piper catalog voices are downloaded from (rhasspy/piper-voices' layout; a mirror works).",
    )
    kokoro_voices_url: str = Field(
        "https://huggingface.co/hexgrad/Kokoro-82M/resolve/main/",
        description="Where Kokoro stock voices are downloaded from (voices/<name>.pt below it; a mirror works).",
    )
    voice_download_on_demand: bool = Field(
        True, description="Download a catalog voice when a request or voice.json names one that is not installed.",
    )
    voice_download_wait: float = Field(
        30.0, ge=0, le=3600, description="Seconds a speak request waits for its voice's download before the "
                                         "fallback answers it (reason voice_downloading).",
    )
    voice_download_max_mb: int = Field(
        4096, ge=1, description="The voices' disk cap: most MB a voices folder may take, by downloads and imports alike; more: refused.",
    )
    voice_download_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds a voice download waits to connect, and for each read, before it "
                                        "gives up (a later try resumes it).",
    )
    voice_import_max_mb: int = Field(
        1024, ge=1, le=1024 * 1024,
        description="Biggest voice import in MB: an upload, and what an archive unpacks to (an RVC zip is ~200 MB).",
    )

    # -- the doors besides the agent's own MQTT topics ------------------------------------------
    http_enabled: bool = Field(True, description="Serve the HTTP and WebSocket API (and the web page).")
    http_host: str = Field("127.0.0.1", description="Where the HTTP API listens; anything but loopback needs a token.")
    http_port: int = Field(4321, ge=1, le=65535, description="HTTP API port (4321: the API this agent replaces).")
    http_token: SecretStr | None = Field(
        None, description="Bearer token every HTTP request must carry (Authorization); empty: none. No whitespace; "
                          f"off loopback at least {MIN_TOKEN_CHARS} characters."
    )
    http_max_connections: int = Field(
        256, ge=1, le=65536, description="Open HTTP connections (WebSockets and event streams too); one more is "
                                         "answered 503 busy. At most an eighth of the open-file limit."
    )
    http_idle_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds an HTTP connection may take to send a request's head, from its "
                                         "start or the last answer: an idle or slow one is closed after it."
    )
    wyoming_uri: str = Field("", description="Wyoming TTS server for Home Assistant, e.g. tcp://0.0.0.0:10210; empty: off.")
    wyoming_zeroconf: bool = Field(False, description="Advertise the Wyoming server on the network (mDNS).")
    ha_discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery for every profile.")
    ha_discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix.")
    hermes_tts: bool = Field(True, description="Answer Rhasspy/Hermes hermes/tts/say.")
    hermes_play_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds to wait for playFinished before saying sayFinished anyway."
    )

    @field_validator("node")
    @classmethod
    def _node_name(cls, value: str) -> str:
        return check_node_name(value)

    @field_validator("piper_voices_url", "kokoro_voices_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        """A folder URL over HTTP(S): voices' paths are joined onto it."""
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("base_topic", "ha_discovery_prefix")
    @classmethod
    def _plain_topic(cls, value: str) -> str:
        value = value.strip("/")
        if not value or any(ch in value for ch in "+#\0"):
            raise ValueError("must be a non-empty topic without wildcards")
        return value

    @field_validator("hermes_sites", "gpu_hogs", "extra_trainers", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        """From the environment or the file these come as JSON text; pydantic-settings' own decoding
        would end in a traceback that names no setting."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not JSON ({exc})") from None

    @field_validator("mqtt_tls_ca", "mqtt_tls_cert", "mqtt_tls_key")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("mqtt_tls_ca")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        """Loaded now, as the connection will load it: a file that is not a PEM bundle is a setting's
        mistake, said at start-up, not a traceback when the first connection is made."""
        if value is not None:
            try:
                ssl.create_default_context(cafile=str(value))
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(f"{value} is not a PEM CA bundle ({_ssl_reason(exc)})") from None
        return value

    @field_validator("http_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        """Empty is none (``VOICE_AGENT_HTTP_TOKEN=`` in agent.env); whitespace cannot be in a token
        (a header carries it as one word, the page trims what is typed)."""
        if value is None or not value.get_secret_value():
            return None
        if any(ch.isspace() or not ch.isprintable() for ch in value.get_secret_value()):
            raise ValueError(f"must be one word without whitespace, e.g. `openssl rand -hex {MIN_TOKEN_CHARS}`")
        return value

    @model_validator(mode="after")
    def _token_off_loopback(self) -> "AgentSettings":
        weak = self.http_token is None or len(self.http_token.get_secret_value()) < MIN_TOKEN_CHARS
        if self.http_enabled and weak and not is_loopback(self.http_host):
            raise ValueError(
                f"http_host {self.http_host!r} is not a loopback address: set VOICE_AGENT_HTTP_TOKEN to at least "
                f"{MIN_TOKEN_CHARS} characters without whitespace (e.g. `openssl rand -hex {MIN_TOKEN_CHARS}`; every "
                "HTTP request must then carry 'Authorization: Bearer <token>'), or listen on 127.0.0.1"
            )
        if self.mqtt_tls_key is not None and self.mqtt_tls_cert is None:
            raise ValueError("mqtt_tls_key needs mqtt_tls_cert (the client certificate) as well")
        return self

    @property
    def broker_is_private(self) -> bool:
        """A login or TLS is configured: the household's broker is meant, never an open one of ours."""
        return bool(self.mqtt_username) or self.mqtt_tls

    @field_validator("idle_window")
    @classmethod
    def _window(cls, value: str) -> str:
        from agent.train.schedule import parse_window

        parse_window(value)
        return value

    @model_validator(mode="after")
    def _client_certificate(self) -> "AgentSettings":
        """Loaded now, as the connection will load it (see ``_ca_bundle``)."""
        if self.mqtt_tls_cert is not None:
            try:
                key = self.mqtt_tls_key or self.mqtt_tls_cert
                ssl.create_default_context().load_cert_chain(str(self.mqtt_tls_cert), str(key))
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(
                    "VOICE_AGENT_MQTT_TLS_CERT / VOICE_AGENT_MQTT_TLS_KEY: not a PEM client certificate and its "
                    f"private key ({_ssl_reason(exc)})"
                ) from None
        return self

    @model_validator(mode="after")
    def _client_id(self) -> "AgentSettings":
        if not self.mqtt_client_id:
            self.mqtt_client_id = default_client_id(socket.gethostname(), self.home)
        return self


def default_client_id(host: str, home: Path) -> str:
    """``voice-agent-<host>-<8 hex of the home's path>``: agents of different homes (on one machine
    or several) never share a session on the broker, and one home keeps its id across restarts."""
    plain_host = re.sub(r"[^A-Za-z0-9-]", "-", host)[:32] or "host"
    digest = hashlib.sha256(str(home.absolute()).encode()).hexdigest()[:8]
    return f"voice-agent-{plain_host}-{digest}"


def _ssl_reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc).replace("_", " ").lower()


class SettingsError(ValueError):
    """Settings the agent cannot run with: one line per problem, each naming the setting or the
    settings file's line."""


def load_settings() -> AgentSettings:
    """Read settings from the environment, then the settings file for anything unset there;
    ``SettingsError`` when they are wrong."""
    from agent.layout import Layout
    from agent.settings_file import SettingsFileError, check_settings_file

    home = Path(os.environ.get("VOICE_AGENT_HOME") or Path.cwd())
    env_file = Path(os.environ.get("VOICE_AGENT_SETTINGS_FILE") or Layout(home).settings_file)
    try:
        if env_file.is_file():
            check_settings_file(env_file)
            return AgentSettings(_env_file=env_file)  # type: ignore[call-arg]
        return AgentSettings()
    except SettingsFileError as exc:
        raise SettingsError(str(exc)) from None
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the addresses only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


SECRET_WORDS = ("password", "token", "secret", "key")


def describe_settings_error(exc: Exception) -> str:
    """Each bad setting and what is wrong with it, and never a value: a mistyped variable may hold
    a password, and this goes to the journal."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for err in exc.errors():
        field = (".".join(str(part) for part in err["loc"]) or "settings").removeprefix("voice_agent_")  # extras keep it
        message = err["msg"] if err["type"] != "extra_forbidden" else "not a setting of the agent (a typo?)"
        message = " ".join(message.removeprefix("Value error, ").split())  # one line each
        lines.append(f"VOICE_AGENT_{field.upper()}: {message}" if err["loc"] else message)
    return "\n".join(lines)

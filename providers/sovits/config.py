"""``tts.sovits`` in voice.json: how to speak through a GPT-SoVITS server, and how to run one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl, SecretStr, field_validator

from providers.common.names import PlainName
from providers.settings_base import FallbackSettings, LocalPath

# GPT-SoVITS language codes (v2+: auto, auto_yue, en, zh, ja, yue, ko, all_*); the server decides
# which its model supports and answers 400 with its own message for the others.
LANGUAGE = r"^[a-z][a-z_]{1,15}$"
V2_SERVER_ARGS = ("api_v2.py", "-a", "{host}", "-p", "{port}", "-c", "GPT_SoVITS/configs/tts_infer.yaml")
V1_SERVER_ARGS = ("api.py", "-a", "{host}", "-p", "{port}")


class SovitsSettings(FallbackSettings):
    voice_field = "speaker_id"
    speed_field = "speed"

    # -- the seed's settings ---------------------------------------------------------------
    server_url: HttpUrl = Field(HttpUrl("http://127.0.0.1:9880"), description="GPT-SoVITS API server.")
    speaker_id: PlainName = Field("default", description="Reference speaker.")
    temperature: float = Field(1.0, gt=0.0, le=2.0, description="Sampling temperature.")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speed factor.")
    auto_start: bool = Field(False, description="Start the configured server when this provider is selected.")

    # -- the request -----------------------------------------------------------------------
    api_version: Literal["v2", "v1"] = Field("v2", description="v2: api_v2.py (POST /tts); v1: the older api.py (POST /).")
    text_lang: str = Field("auto", pattern=LANGUAGE, description="Language of the text to speak.")
    prompt_lang: str = Field("auto", pattern=LANGUAGE, description="Language of the reference transcript.")
    top_k: int = Field(15, ge=1, le=100, description="Top-k sampling.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Top-p sampling.")
    text_split_method: str = Field("cut5", pattern=r"^cut[0-5]$", description="api_v2 text_split_method (cut5: at punctuation).")
    streaming_mode: int = Field(
        1, ge=0, le=3,
        description="api_v2 streaming_mode: 0 whole answer at once, 1 one piece per sentence, 2/3 smaller pieces sooner "
        "(newer servers, lower quality). Ignored by v1.",
    )
    connect_timeout: float = Field(3.0, gt=0.0, le=60.0, description="Seconds to wait for the server to accept a connection.")
    timeout: float = Field(
        120.0, gt=0.0, le=280.0,
        description="Longest one request may take, start to last byte (below the agent's 300 s stall limit).",
    )

    # -- getting the reference audio to the server ----------------------------------------
    reference_transfer: Literal["path", "upload"] = Field(
        "path",
        description="path: send the file's path (same machine, or a shared folder with pathMap); "
        "upload: copy it to the server's reference receiver at uploadUrl first.",
    )
    # Not LocalPaths: prefixes rewritten in the reference path the agent chose itself, never opened.
    path_map: dict[str, str] = Field(
        default_factory=dict,
        description="Local path prefix -> the same folder as the server sees it (a network share).",
    )
    upload_url: HttpUrl | None = Field(None, description="Reference receiver (providers/sovits/receiver.py) on the server's machine.")
    upload_token: SecretStr | None = Field(None, description="Shared secret the receiver was started with (--token).")

    # -- running the server ------------------------------------------------------------------
    install_dir: LocalPath = Field(
        "opt/GPT-SoVITS", min_length=1, description="GPT-SoVITS checkout; relative paths are under the agent's home."
    )
    python: LocalPath = Field(
        ".venv/bin/python", min_length=1,
        description="Interpreter of the server: relative to installDir, absolute, or a bare name looked up on PATH.",
    )
    server_args: list[str] | None = Field(
        None,
        description="Arguments after the interpreter; {host} and {port} come from serverUrl. "
        "Default: api_v2.py -a {host} -p {port} -c GPT_SoVITS/configs/tts_infer.yaml (api.py -a {host} -p {port} for v1).",
    )
    start_timeout: float = Field(180.0, gt=0.0, le=3600.0, description="Seconds the server may take to load its models.")

    @field_validator("path_map")
    @classmethod
    def _absolute_prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        for local, remote in value.items():
            if not local.startswith("/") or not remote:
                raise ValueError("maps absolute local prefixes to non-empty server prefixes")
        return value



    def language_update(self, lang: str) -> dict[str, object]:
        """A request's ``en-US`` is GPT-SoVITS' ``en`` (its text_lang)."""
        return {"text_lang": lang.strip().lower().replace("_", "-").split("-")[0]}

    def cache_key(self) -> str:
        return f"sovits:{self.speaker_id}:{self.temperature:g}:{self.speed:g}"

    @property
    def base_url(self) -> str:
        return str(self.server_url).rstrip("/")

    @property
    def host(self) -> str:
        return self.server_url.host or "127.0.0.1"

    @property
    def port(self) -> int:
        return self.server_url.port or 80

    def server_argv(self) -> list[str]:
        """The server's arguments with {host}/{port} filled in from serverUrl."""
        args = self.server_args if self.server_args is not None else list(
            V2_SERVER_ARGS if self.api_version == "v2" else V1_SERVER_ARGS
        )
        host = self.host.strip("[]")
        return [a.replace("{host}", host).replace("{port}", str(self.port)) for a in args]

    def audio_knobs(self) -> str:
        """Settings outside the seed's cache key that still change the audio (they go into the asset tag)."""
        return "|".join(
            str(v) for v in (self.api_version, self.base_url, self.text_lang, self.prompt_lang, self.top_k,
                             self.top_p, self.text_split_method)
        )

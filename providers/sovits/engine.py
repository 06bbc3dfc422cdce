"""GPT-SoVITS provider: zero-shot cloning from a speaker's reference audio, synthesized by the
user's GPT-SoVITS server (api_v2 or the older api.py), which the agent may also run."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

from providers.base import AudioChunk, ProviderContext, ProviderError, ProviderUnavailableError, VoiceInfo
from providers.settings_base import ProviderSettings
from providers.sovits.client import SovitsClient, build_request
from providers.sovits.config import SovitsSettings
from providers.sovits.reference import ReferenceTransfer, find_reference, list_speakers
from providers.sovits.servers import ServerManager
from providers.sovits.supervisor import answers

log = logging.getLogger(__name__)


class SovitsProvider:
    """Speaks through a GPT-SoVITS server; owns the servers it was asked to run (``servers``)."""

    name = "sovits"

    def __init__(self) -> None:
        self.client = SovitsClient()
        self.transfer = ReferenceTransfer()
        self.servers = ServerManager()
        self._told: set[str] = set()  # references we warned about (once each)

    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        assert isinstance(settings, SovitsSettings)
        reference = find_reference(ctx, settings.speaker_id)
        if not reference.transcript and reference.tag not in self._told:
            self._told.add(reference.tag)
            log.warning(
                "GPT-SoVITS reference %s has no transcript: speaking in reference-free mode (v1/v2 models only; "
                "write the words spoken in it to %s for a closer voice)", reference.audio, reference.audio.with_suffix(".txt"),
            )
        if settings.auto_start:
            self._wait_for_server(settings, ctx)
        request = build_request(text, settings, self.transfer.server_path(reference, settings), reference.transcript)
        try:
            yield from self.client.speak(settings, request)
        except ProviderError:
            if settings.reference_transfer == "upload":
                self.transfer.forget(settings)
            raise

    def _wait_for_server(self, settings: SovitsSettings, ctx: ProviderContext) -> None:
        supervisor = self.servers.ensure_started(settings, ctx)
        if supervisor.wait_ready(settings.timeout):
            return
        status = supervisor.status()
        if status["state"] == "stopped":  # stopped by hand: autoStart leaves it so
            if answers(supervisor.command.host, supervisor.command.port):
                return  # someone started one outside the agent
            raise ProviderUnavailableError(
                f"GPT-SoVITS server at {settings.base_url} was stopped (voice-agent sovits stop): "
                "start it again with `voice-agent sovits start`"
            )
        raise ProviderUnavailableError(
            f"GPT-SoVITS server at {settings.base_url} is {status['state']}"
            f"{' (' + status['error'] + ')' if status['error'] else ''}: see {status['log']}"
        )

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        return [
            VoiceInfo(name=speaker, provider=self.name, location=str(folder))
            for speaker, folder in sorted(list_speakers(ctx).items())
        ]

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        assert isinstance(settings, SovitsSettings)
        reference = find_reference(ctx, settings.speaker_id)
        return hashlib.sha256(f"{reference.tag}|{settings.audio_knobs()}".encode()).hexdigest()[:16]

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        """Selected in voice.json: start the server if autoStart (without waiting for it), and
        complain now, in the log, when the speaker has no reference."""
        assert isinstance(settings, SovitsSettings)
        if settings.auto_start:
            self.servers.ensure_started(settings, ctx)
        find_reference(ctx, settings.speaker_id)

    def close(self) -> None:
        self.servers.stop_all()
        self.client.close()

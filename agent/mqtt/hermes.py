"""Rhasspy/Snips Hermes over the agent's MQTT connection.

TTS: ``hermes/tts/say`` is spoken through the ``speak`` command; the WAV goes to
``hermes/audioServer/<siteId>/playBytes/<requestId>``, and ``hermes/tts/sayFinished`` follows the
site's ``playFinished`` for that request (or a timeout): finished means heard, not just made.
Errors go to ``hermes/error/tts``. ``rhasspy/tts/getVoices`` lists the site's voices.

ASR: a recorded site's ``asr/startListening``, ``asr/textCaptured`` and ``asr/stopListening``
give the record path the words of the utterance the satellite heard.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import Future
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from agent.commands import check_profile, find, validate
from agent.core import Core
from agent.errors import ServiceError
from agent.mqtt.transport import MqttTransport
from agent.requests import load_json
from agent.settings import AgentSettings
from providers.base import ProviderError
from providers.settings_base import InputModel

log = logging.getLogger(__name__)

SAY = "hermes/tts/say"
SAY_FINISHED = "hermes/tts/sayFinished"
TTS_ERROR = "hermes/error/tts"
GET_VOICES = "rhasspy/tts/getVoices"
VOICES = "rhasspy/tts/voices"
PLAY_FINISHED = "hermes/audioServer/+/playFinished"
ASR = {"hermes/asr/startListening": "listening", "hermes/asr/textCaptured": "heard", "hermes/asr/stopListening": "stopped"}
DEFAULT_PROFILE = "default"


class HermesMessage(InputModel):
    """Hermes JSON is camelCase and grows new keys: unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    site_id: str = Field("default", alias="siteId", max_length=128)
    session_id: str | None = Field(None, alias="sessionId", max_length=128)
    id: str | None = Field(None, max_length=128)


class Say(HermesMessage):
    text: str = Field(min_length=1)
    lang: str | None = Field(None, max_length=16)


class Captured(HermesMessage):
    text: str = Field("", max_length=2000)


class PlayFinished(HermesMessage):
    pass


class SiteAudio:
    """The utterance as one WAV for the site's audio server, under the request's id."""

    def __init__(self, transport: MqttTransport, site: str, request_id: str) -> None:
        self._transport, self._site, self._request_id = transport, site, request_id

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None:
        self.whole(request_id, wav)

    def whole(self, request_id: str, wav: bytes) -> None:
        self._transport.publish(f"hermes/audioServer/{self._site}/playBytes/{self._request_id}", wav, 1, False)

    def where(self, request_id: str, stream: bool) -> str:
        return f"hermes/audioServer/{self._site}/playBytes/{self._request_id}"


class HermesBridge:
    def __init__(self, core: Core, transport: MqttTransport, settings: AgentSettings) -> None:
        self._core = core
        self._transport = transport
        self._sites = settings.hermes_sites
        self._timeout = settings.hermes_play_timeout
        self._tts = settings.hermes_tts
        self._playing: dict[str, tuple[Say, threading.Timer]] = {}  # request id -> what is being played
        self._lock = threading.Lock()

    def subscriptions(self) -> list[tuple[str, int]]:
        topics = [(SAY, 1), (GET_VOICES, 1), (PLAY_FINISHED, 1)] if self._tts else []
        if self._sites:
            topics += [(topic, 1) for topic in ASR]
        return topics

    def on_connect(self) -> None:
        pass

    def stop(self) -> None:
        with self._lock:
            playing, self._playing = list(self._playing.values()), {}
        for say, timer in playing:
            timer.cancel()

    def profile_of(self, site: str) -> str:
        """A site's profile: VOICE_AGENT_HERMES_SITES, else the default profile."""
        return self._sites.get(site, DEFAULT_PROFILE)

    def on_message(self, topic: str, payload: bytes) -> bool:
        if topic == SAY:
            self._say(payload)
        elif topic == GET_VOICES:
            self._voices(payload)
        elif topic.startswith("hermes/audioServer/") and topic.endswith("/playFinished"):
            self._play_finished(payload)
        elif topic in ASR:
            captured = self._parse(Captured, payload)
            if captured is not None:
                self._core.streams.on_hermes_asr(captured.site_id, ASR[topic], captured.text)
        else:
            return False
        return True

    # -- tts ---------------------------------------------------------------------------------------
    def _say(self, payload: bytes) -> None:
        say = self._parse(Say, payload)
        if say is None:
            return
        request_id = say.id or uuid.uuid4().hex
        profile = self.profile_of(say.site_id)
        try:
            check_profile(profile, self._core.layout.exists)
            command = find(self._core.commands, "speak")
            request = validate(command, {"text": say.text, **({"lang": say.lang} if say.lang else {})})
            result = command.run(profile, request, SiteAudio(self._transport, say.site_id, request_id))
        except (ServiceError, ProviderError) as exc:
            self._error(say, str(exc))
            return
        if isinstance(result, Future):
            result.add_done_callback(lambda done: self._spoken(say, request_id, done))

    def _spoken(self, say: Say, request_id: str, done: Future[dict[str, Any]]) -> None:
        error = done.exception()
        if error is not None:
            self._error(say, str(error))
            return
        spoken = done.result()
        if spoken.get("fallback"):
            log.warning("hermes/tts/say for site %s spoken by %s/%s instead (%s): %s", say.site_id, spoken["provider"],
                        spoken["voice"], spoken.get("fallback_code"), spoken.get("fallback_reason"))
        timer = threading.Timer(self._timeout, self._finished, args=(request_id, True))
        timer.daemon = True
        with self._lock:
            self._playing[request_id] = (say.model_copy(update={"id": request_id}), timer)
        self._core.streams.own_speech.started(f"site:{say.site_id}")  # its microphone hears this
        timer.start()

    def _play_finished(self, payload: bytes) -> None:
        played = self._parse(PlayFinished, payload, quiet=True)
        if played is not None and played.id:
            self._finished(played.id, False)

    def _finished(self, request_id: str, timed_out: bool) -> None:
        with self._lock:
            found = self._playing.pop(request_id, None)
        if found is None:
            return
        say, timer = found
        timer.cancel()
        self._core.streams.own_speech.finished(f"site:{say.site_id}")
        if timed_out:
            log.warning("no playFinished for %s from site %s within %g s: saying it finished", request_id, say.site_id,
                        self._timeout)
        message = {"id": say.id, "siteId": say.site_id, "sessionId": say.session_id}
        self._transport.publish(SAY_FINISHED, json.dumps(message), 1, False)

    def _error(self, say: Say, error: str) -> None:
        log.warning("hermes/tts/say for site %s refused: %s", say.site_id, error)
        document = {"error": error, "siteId": say.site_id, "context": say.text[:200], "sessionId": say.session_id}
        self._transport.publish(TTS_ERROR, json.dumps(document), 1, False)

    def _voices(self, payload: bytes) -> None:
        """The site's installed voices: ``hermes/tts/say`` names no voice, so the catalog's
        downloadable voices (230 names) could never be spoken from here."""
        asked = self._parse(HermesMessage, payload)
        if asked is None:
            return
        profile = self.profile_of(asked.site_id)

        def answer(done: Future[dict[str, Any]]) -> None:
            found = [] if done.exception() else done.result()["voices"]
            voices = [{"voiceId": v["name"], "description": f"{v['provider']} {v.get('language', '')}".strip()} for v in found]
            self._transport.publish(VOICES, json.dumps({"voices": voices, "id": asked.id, "siteId": asked.site_id}), 1, False)

        try:
            check_profile(profile, self._core.layout.exists)
            result = self._core.commands["voices"].run(profile, validate(self._core.commands["voices"], {"catalog": False}), None)  # type: ignore[arg-type]
        except ServiceError as exc:
            log.warning("rhasspy/tts/getVoices for %s refused: %s", asked.site_id, exc)
            return
        if isinstance(result, Future):
            result.add_done_callback(answer)

    def _parse(self, model: type[Any], payload: bytes, quiet: bool = False) -> Any:
        try:
            return model.model_validate(load_json(payload))
        except (ValueError, ValidationError) as exc:
            if not quiet:
                log.warning("ignored a malformed Hermes message (%s): %s", model.__name__, exc)
            return None

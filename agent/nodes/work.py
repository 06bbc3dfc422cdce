"""Work one node asks of another over the broker: the job a home node publishes on a work topic
(MQTT 5 request/response: its own response topic, the job's id as correlation data) and the
replies a worker sends back. One model for both ends; what comes from the broker is checked here.

A job names its files by SHA-256 (the worker fetches what it lacks from the home's blob route);
the audio comes back as PCM, a sentence a reply, so the home's cache, encoding and streaming stay
the one speak path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.requests import Text, describe_validation_error
from agent.nodes.state import NODE_PATTERN

MAX_JOB_BYTES = 256 * 1024  # a job is a text, a provider's settings and a few hashes
MAX_REPLY_BYTES = 64 << 20  # a sentence of PCM, base64: minutes of 48 kHz audio fit
JOB_ID = r"^[A-Za-z0-9_.-]{1,80}$"
HASH = r"^[0-9a-f]{64}$"


class WorkError(ValueError):
    """A message on a work or reply topic that is not one."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class _Sealed(_Message):
    """A message with ``mac``: HMAC-SHA256 of the rest under the household's token. Anyone who may
    publish on the broker can write a job or a reply: a worker fetches with the token from the
    ``home_url`` a job names (a node's state document is no proof, anyone can publish one), and a
    home speaks the audio a reply carries; so each end takes only what a token holder sealed."""

    mac: str = Field("", pattern=r"^([0-9a-f]{64})?$")

    def sealed(self, token: str) -> Self:
        """This message with its ``mac`` under ``token``."""
        return self.model_copy(update={"mac": self._mac(token)})

    def sealed_by(self, token: str) -> bool:
        """Whether a holder of ``token`` (not empty) sealed this message."""
        return bool(token) and hmac.compare_digest(self.mac, self._mac(token))

    def _mac(self, token: str) -> str:
        return hmac.new(token.encode(), self.model_dump_json(exclude={"mac"}).encode(), hashlib.sha256).hexdigest()


class BlobRef(_Message):
    """A file the work needs: fetched by hash from the home node, checked against it."""

    sha256: str = Field(pattern=HASH)
    size: int = Field(ge=0)
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")  # its file name at home (the engine may look at it)


class SpeakWork(_Sealed):
    """Speak ``text`` with ``provider`` and the profile's ``settings`` (its voice.json section)."""

    id: str = Field(pattern=JOB_ID)
    home: str = Field(pattern=NODE_PATTERN)
    home_url: str = Field(pattern=r"^https?://[^\s/]+$")  # the home's HTTP door, where the files are
    provider: str = Field(max_length=64)
    text: Text = Field(min_length=1, max_length=20_000)
    settings: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, BlobRef] = Field(default_factory=dict, max_length=16)  # role (model, index, ...) -> file

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


ReplyKind = Literal["accepted", "declined", "alive", "chunk", "done", "failed"]


class WorkReply(_Sealed):
    """One word from the worker about one job: ``accepted`` (it runs it), ``declined`` (it cannot
    now: ``code`` busy, provider_unavailable), ``alive`` (still at it), ``chunk`` (a sentence's
    PCM), ``done`` (``seq`` chunks were sent), ``failed`` (``code`` and ``message``)."""

    kind: ReplyKind
    node: str = Field(pattern=NODE_PATTERN)
    id: str = Field(pattern=JOB_ID)
    code: str = Field("", max_length=64)
    message: str = Field("", max_length=2000)
    seq: int = Field(0, ge=0)
    sample_rate: int = Field(0, ge=0, le=384_000)
    pcm: str = ""  # base64 of little-endian int16 mono

    def audio(self) -> bytes:
        try:
            pcm = base64.b64decode(self.pcm, validate=True)
        except ValueError as exc:
            raise WorkError(f"a chunk of job {self.id} is not base64 PCM") from exc
        if len(pcm) % 2 or self.sample_rate <= 0:
            raise WorkError(f"a chunk of job {self.id} is not 16-bit PCM at a rate")
        return pcm

    @classmethod
    def chunk(cls, node: str, job: str, seq: int, pcm: bytes, sample_rate: int) -> "WorkReply":
        return cls(kind="chunk", node=node, id=job, seq=seq, pcm=base64.b64encode(pcm).decode(), sample_rate=sample_rate)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_defaults=True).encode()


def read_job(payload: bytes) -> SpeakWork:
    return _read(SpeakWork, payload, MAX_JOB_BYTES, "speak job")  # type: ignore[return-value]


def read_reply(payload: bytes) -> WorkReply:
    return _read(WorkReply, payload, MAX_REPLY_BYTES, "work reply")  # type: ignore[return-value]


def _read(model: type[_Message], payload: bytes, limit: int, what: str) -> _Message:
    if len(payload) > limit:
        raise WorkError(f"a {what} of {len(payload)} bytes, more than {limit}")
    try:
        return model.model_validate(json.loads(payload))
    except ValidationError as exc:
        raise WorkError(f"not a {what}: {describe_validation_error(exc)}") from exc
    except ValueError as exc:
        raise WorkError(f"not a {what}: {exc}") from exc

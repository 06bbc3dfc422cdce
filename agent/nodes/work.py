"""Work one node asks of another over the broker: the job a home node publishes on a work topic
(MQTT 5 request/response: its own response topic, the job's id as correlation data) and the
replies a worker sends back. One model for both ends; what comes from the broker is checked here.

A job names its files by SHA-256 (the worker fetches what it lacks from the home's blob route);
the audio comes back as PCM, a sentence a reply, so the home's cache, encoding and streaming stay
the one speak path. A training job names its dataset and the checkpoint it resumes from the same
way; its progress comes back a report a reply, and its checkpoints and trained files either in the
reply (``FileData``: the bytes with their SHA-256, which the home checks before a file becomes one)
or, when they do not fit one, named by hash (``fetch``): the home fetches them from the worker's
blob route as the worker fetched its inputs, and says so (``Release``) so the worker lets them go.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import threading
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.requests import Text, describe_validation_error
from agent.nodes.state import NODE_PATTERN
from providers.common.names import PlainName

log = logging.getLogger(__name__)

MAX_JOB_BYTES = 256 * 1024  # a job is a text, a provider's settings and a few hashes
MAX_REPLY_BYTES = 64 << 20  # a sentence of PCM, base64: minutes of 48 kHz audio fit
MAX_TRAIN_JOB_BYTES = 2 << 20  # a training job names every file of its dataset: thousands fit
JOB_ID = r"^[A-Za-z0-9_.-]{1,80}$"
HASH = r"^[0-9a-f]{64}$"
FILE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"  # one level, never hidden: a name, never a path
MAX_INLINE_BYTES = 32 << 20  # the files one reply carries (base64 makes 4/3 of it, under MAX_REPLY_BYTES)


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
    name: str = Field(pattern=FILE_NAME)  # its file name at home (the engine may look at it)


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


class TrainWork(_Sealed):
    """Train ``provider``'s voice of ``speaker`` with ``params`` on the ``dataset`` files, resuming
    from the ``checkpoint`` files when there are any (the last the home holds, of step ``step``).
    ``id`` is this try's (the correlation), ``job`` the home's own job id."""

    id: str = Field(pattern=JOB_ID)
    job: str = Field(pattern=JOB_ID)
    home: str = Field(pattern=NODE_PATTERN)
    home_url: str = Field(pattern=r"^https?://[^\s/]+$")
    profile: PlainName
    provider: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    speaker: PlainName
    params: dict[str, Any] = Field(default_factory=dict)
    dataset: list[BlobRef] = Field(min_length=1, max_length=20_000)
    checkpoint: list[BlobRef] = Field(default_factory=list, max_length=64)
    step: int = Field(0, ge=0)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class FileData(_Message):
    """A file in a reply: its bytes (base64) with their size and SHA-256, checked by ``content``."""

    name: str = Field(pattern=FILE_NAME)
    sha256: str = Field(pattern=HASH)
    size: int = Field(ge=0, le=MAX_INLINE_BYTES)
    data: str

    @classmethod
    def of(cls, name: str, content: bytes) -> "FileData":
        return cls(name=name, sha256=hashlib.sha256(content).hexdigest(), size=len(content),
                   data=base64.b64encode(content).decode())

    def content(self) -> bytes:
        """The bytes, once their size and SHA-256 are the ones named; else ``WorkError``."""
        try:
            content = base64.b64decode(self.data, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise WorkError(f"file {self.name} is not base64") from exc
        if len(content) != self.size or hashlib.sha256(content).hexdigest() != self.sha256:
            raise WorkError(f"file {self.name} is not the one named: {len(content)} bytes, SHA-256 "
                            f"{hashlib.sha256(content).hexdigest()[:12]}..., not {self.size} bytes, {self.sha256[:12]}...")
        return content


class TrainProgress(_Message):
    """One progress report of the trainer (providers/training.py ``Progress``), as it crosses the broker."""

    stage: str = Field("", max_length=64)
    step: int = Field(0, ge=0)
    total: int = Field(0, ge=0)
    best: float | None = None
    loss: float | None = None
    message: str = Field("", max_length=500)
    checkpoint: bool = False

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> "TrainProgress":
        """A job process's progress line, its numbers made finite (a NaN loss is no loss)."""
        def number(value: Any) -> float | None:
            return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

        return cls(stage=str(report.get("stage") or "")[:64], step=max(0, int(report.get("step") or 0)),
                   total=max(0, int(report.get("total") or 0)), best=number(report.get("best")),
                   loss=number(report.get("loss")), message=str(report.get("message") or "")[:500],
                   checkpoint=bool(report.get("checkpoint")))


TrainReplyKind = Literal["accepted", "declined", "alive", "progress", "done", "failed"]


class TrainReply(_Sealed):
    """One word from the worker about one training job: ``accepted``, ``declined`` (``code``: busy,
    trainer_unavailable), ``alive``, ``progress`` (a report; with ``files`` when it follows a
    checkpoint: the checkpoint folder's files), ``done`` (``status`` finished with the trained
    ``files`` and ``metrics``, or stopped as asked, or refused: the dataset will not do) and
    ``failed`` (``code`` and ``message``). Files too large for a reply are in ``fetch`` instead,
    offered on the worker's blob route at ``url`` (its own door, sealed with the rest: the home
    sends the token to no other)."""

    kind: TrainReplyKind
    node: str = Field(pattern=NODE_PATTERN)
    id: str = Field(pattern=JOB_ID)
    code: str = Field("", max_length=64)
    message: str = Field("", max_length=2000)
    progress: TrainProgress | None = None
    files: list[FileData] = Field(default_factory=list, max_length=64)
    fetch: list[BlobRef] = Field(default_factory=list, max_length=64)
    url: str = Field("", pattern=r"^(https?://[^\s/]+)?$")
    status: Literal["", "finished", "stopped", "refused"] = ""
    metrics: dict[str, float] = Field(default_factory=dict, max_length=64)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_defaults=True).encode()


class StopWork(_Sealed):
    """The home asks the worker to checkpoint and stop its job ``id`` (a cancel, the home stopping)."""

    kind: Literal["stop"] = "stop"
    id: str = Field(pattern=JOB_ID)
    home: str = Field(pattern=NODE_PATTERN)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class Release(_Sealed):
    """The home has the files a worker offered for its job ``id`` (``files``: their hashes; none: the
    job is over here, every one of them may go)."""

    kind: Literal["release"] = "release"
    id: str = Field(pattern=JOB_ID)
    home: str = Field(pattern=NODE_PATTERN)
    files: list[Annotated[str, Field(pattern=HASH)]] = Field(default_factory=list, max_length=128)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def read_train_job(payload: bytes) -> TrainWork:
    return _read(TrainWork, payload, MAX_TRAIN_JOB_BYTES, "training job")  # type: ignore[return-value]


def read_train_reply(payload: bytes) -> TrainReply:
    return _read(TrainReply, payload, MAX_REPLY_BYTES, "training reply")  # type: ignore[return-value]


def read_stop(payload: bytes) -> StopWork | Release:
    """A home's word about its job on this worker: a stop, or a release of the files it fetched."""
    if len(payload) > MAX_JOB_BYTES:
        raise WorkError(f"a stop of {len(payload)} bytes, more than {MAX_JOB_BYTES}")
    try:
        kind = json.loads(payload).get("kind")
    except (ValueError, AttributeError) as exc:
        raise WorkError(f"not a stop: {exc}") from exc
    if kind == "release":
        return _read(Release, payload, MAX_JOB_BYTES, "release")  # type: ignore[return-value]
    return _read(StopWork, payload, MAX_JOB_BYTES, "stop")  # type: ignore[return-value]


ReplyModel = TypeVar("ReplyModel", WorkReply, TrainReply)


class Answer(Generic[ReplyModel]):
    """A worker's replies to one job, each a whole message sealed with the household's token (the
    home takes no other); ``reply`` publishes one on the job's response topic."""

    def __init__(self, model: type[ReplyModel], node: str, job: str, reply: Callable[[bytes], None], token: str) -> None:
        self._model: type[ReplyModel] = model
        self._node = node
        self._job = job
        self._reply = reply
        self._token = token
        self.lock = threading.RLock()  # the ticker and the job's thread: one message at a time

    def say(self, kind: str, **fields: object) -> None:
        self.send(self._model.model_validate({"kind": kind, "node": self._node, "id": self._job, **fields}))

    def send(self, reply: ReplyModel) -> None:
        with self.lock:
            try:
                self._reply(reply.sealed(self._token).to_json())
            except Exception:
                log.exception("could not reply to job %s", self._job)

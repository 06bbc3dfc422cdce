"""A node's state document, the one model both ends use: this agent builds it, every node reads
the others' from ``<base>/node/<node>/state`` (retained). ``offline`` is a node's last will.

What a node publishes is what another needs to pick it for work: what it can run (providers and
trainers, loaded or not), its GPUs and their free VRAM, its memory, its queues, whether it takes
others' work. Readers are lenient about fields they do not know (a newer node), strict about the
ones they do.
"""

from __future__ import annotations

import re
import socket
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NODE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")  # fullmatch: "$" would let a trailing newline through
NODE_PATTERN = f"^{NODE_NAME.pattern}$"  # the same, for pydantic fields (they search; their Rust "$" is the very end)
MAX_DOCUMENT_BYTES = 64 * 1024  # a node's document is a few hundred bytes; more is not one
RUN_ON_WORDS = ("local", "auto")  # runOn's own words: a node so named could never be chosen by name
# a profile's topic kinds (<base>/<profile>/<kind>/...): a node so named would have its state at a topic the
# home server's ACL grants as a profile's (voice/+/request/+ matches voice/node/request/state)
PROFILE_TOPIC_KINDS = ("request", "response", "audio", "event", "state", "stream", "hass")
RESERVED_NAMES = RUN_ON_WORDS + PROFILE_TOPIC_KINDS
MAX_REFRESH_S = 3600.0  # a document that claims a longer refresh would never go stale


def check_node_name(name: str) -> str:
    """``name`` as a topic level of its own: letters, digits, ``_ . -``, at most 64, not starting with
    a dot (so never ``/ + #``, never a ``$`` system topic); ``ValueError`` says what is wrong."""
    if not NODE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a node name: 1 to 64 letters, digits, '_', '.' or '-' "
                         "(not starting with '.'), e.g. the host name")
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"{name!r} is not a node name: 'local' and 'auto' are runOn's own words, "
                         f"{', '.join(PROFILE_TOPIC_KINDS)} a profile's topics")
    return name


def default_node_name(host: str | None = None) -> str:
    """The host name as a node name (what a node name may not hold becomes ``-``)."""
    plain = re.sub(r"[^A-Za-z0-9_.-]", "-", host if host is not None else socket.gethostname()).lstrip(".")[:64]
    return plain if plain and plain.lower() not in RESERVED_NAMES else f"node-{plain}".rstrip("-")


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ability(_Part):
    """A provider this node can run: speak with it, and train it when it has a trainer."""

    provider: str
    trains: bool = False
    loaded: bool = False  # its engine runs in the agent now (warm)


class GpuCard(_Part):
    index: int = 0
    name: str = ""
    total_mb: int = 0
    free_mb: int = 0


class Memory(_Part):
    available_mb: int = 0  # what a new job may take (the machine's, within the agent's MemoryMax)
    total_mb: int = 0


class Queues(_Part):
    speak: int = 0  # speak requests accepted and not answered, all profiles
    train: int = 0  # training jobs queued, running or paused in the home


class NodeState(_Part):
    node: str
    status: Literal["online", "offline"] = "online"
    instance: str = ""  # this run of the agent (random): two agents that took one node name tell apart
    version: str = ""
    worker: bool = False  # takes other nodes' work (VOICE_AGENT_WORKER)
    url: str = ""  # its HTTP door, where its blobs are fetched ("": the door is off)
    profiles: list[str] = Field(default_factory=list)  # the profiles at home here (their requests are its)
    providers: list[Ability] = Field(default_factory=list)
    gpus: list[GpuCard] = Field(default_factory=list)
    gpu_reason: str = ""  # why there is no GPU, when there is none
    memory: Memory = Field(default_factory=Memory)
    queues: Queues = Field(default_factory=Queues)
    refresh_s: float = Field(60.0, gt=0, le=MAX_REFRESH_S)  # it is published again at least this often while online
    time: float = 0.0  # the publisher's clock (unix seconds): for people; staleness is judged by the reader's

    @classmethod
    def offline(cls, node: str) -> "NodeState":
        """The last will (and a clean stop's word): only who, and that it is gone."""
        return cls(node=node, status="offline")

    @property
    def free_vram_mb(self) -> int:
        return max((card.free_mb for card in self.gpus), default=0)

    def same_as(self, other: "NodeState | None") -> bool:
        """Equal but for the time it was made."""
        return other is not None and self.model_copy(update={"time": 0.0}) == other.model_copy(update={"time": 0.0})

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def http_url(host: str, port: int, enabled: bool = True) -> str:
    """The HTTP door's address as another machine takes it: a wildcard address is this machine's name."""
    if not enabled:
        return ""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_state(node: str, instance: str, version: str, worker: bool, url: str, profiles: list[str],
                providers: list[Ability], gpu: dict[str, Any], queues: Queues, refresh_s: float, now: float) -> NodeState:
    """The document from the agent's own figures; ``gpu`` is the "gpu" state document (the GPU
    report of agent/gpu/status.py with the memory of agent/memory.py beside it), ``{}`` before the
    first report."""
    cards = [GpuCard(index=int(card.get("index", 0)), name=str(card.get("name", "")),
                     total_mb=int(card.get("total_mb", 0)), free_mb=int(card.get("free_mb", 0)))
             for card in gpu.get("gpus") or [] if isinstance(card, dict)]
    memory = gpu.get("memory") or {}
    return NodeState(
        node=node, instance=instance, version=version, worker=worker, url=url, profiles=profiles, providers=providers, gpus=cards,
        gpu_reason="" if cards else str(gpu.get("reason") or "no GPU report yet"),
        memory=Memory(available_mb=int(memory.get("available_mb", 0)), total_mb=int(memory.get("total_mb", 0))),
        queues=queues, refresh_s=refresh_s, time=now,
    )

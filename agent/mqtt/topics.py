"""Every topic the agent uses, built in one place (see README "MQTT API")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    base: str

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def requests(self) -> str:
        """The one subscription that carries every command for every profile."""
        return f"{self.base}/+/request/+"

    @property
    def streams(self) -> str:
        return f"{self.base}/+/stream/+/+"

    HERMES_FRAMES = "hermes/audioServer/+/audioFrame"

    def parse_stream(self, topic: str) -> tuple[str, str, str] | None:
        """(profile, session, start|frame|stop) of a stream topic, else None."""
        parts = topic.split("/")
        base = self.base.split("/")
        if len(parts) != len(base) + 4 or parts[: len(base)] != base or parts[len(base) + 1] != "stream":
            return None
        return parts[len(base)], parts[len(base) + 2], parts[len(base) + 3]

    @staticmethod
    def parse_hermes_frame(topic: str) -> str | None:
        parts = topic.split("/")
        if len(parts) == 4 and parts[:2] == ["hermes", "audioServer"] and parts[3] == "audioFrame":
            return parts[2]
        return None

    def request(self, profile: str, command: str) -> str:
        return f"{self.base}/{profile}/request/{command}"

    def response(self, profile: str, command: str) -> str:
        return f"{self.base}/{profile}/response/{command}"

    def event(self, profile: str, name: str) -> str:
        return f"{self.base}/{profile}/event/{name}"

    def state(self, profile: str) -> str:
        return f"{self.base}/{profile}/state"

    def audio(self, profile: str, request_id: str, seq: int | None = None) -> str:
        topic = f"{self.base}/{profile}/audio/{request_id}"
        return topic if seq is None else f"{topic}/{seq}"

    def node_state(self, node: str) -> str:
        """A node's retained state document; its last will ``offline`` goes there too."""
        return f"{self.base}/node/{node}/state"

    @property
    def node_states(self) -> str:
        return f"{self.base}/node/+/state"

    def parse_node_state(self, topic: str) -> str | None:
        """The node of a node state topic, else None."""
        prefix = self.base + "/node/"
        if not topic.startswith(prefix) or not topic.endswith("/state"):
            return None
        node = topic[len(prefix) : -len("/state")]
        return node if node and "/" not in node else None

    WORK_GROUP = "voice-workers"  # the shared subscription's group: every worker of a base topic is one

    WORK_KINDS = ("speak", "train")

    def work(self, kind: str, provider: str, node: str | None = None) -> str:
        """Where work of ``kind`` (speak, train) for ``provider`` is published: any worker's (a shared
        subscription hands each job to one of them), or, with ``node``, that node's alone."""
        return f"{self.base}/work/{kind}/{provider}" if node is None else f"{self.base}/node/{node}/work/{kind}/{provider}"

    def shared_work(self, kind: str, provider: str) -> str:
        """A worker's subscription to the shared work of ``kind`` for ``provider`` (MQTT 5 ``$share``)."""
        return f"$share/{self.WORK_GROUP}/{self.work(kind, provider)}"

    def parse_work(self, topic: str) -> tuple[str, str] | None:
        """(kind, provider) of a work topic (shared or a node's own), else None."""
        for kind in self.WORK_KINDS:
            shared, own = f"{self.base}/work/{kind}/", f"/work/{kind}/"
            if topic.startswith(shared):
                rest = topic[len(shared):]
            elif topic.startswith(self.base + "/node/") and own in topic:
                node, rest = topic[len(self.base + "/node/"):].split(own, 1)
                if not node or "/" in node:
                    continue
            else:
                continue
            return (kind, rest) if rest and "/" not in rest else None
        return None

    def work_stop(self, node: str) -> str:
        """Where a home asks worker ``node`` to checkpoint and stop a job of its (a cancel, a shutdown)."""
        return f"{self.base}/node/{node}/work/stop"

    def work_reply(self, node: str) -> str:
        """A node's own response topic for the work it publishes (MQTT 5 request/response)."""
        return f"{self.base}/node/{node}/reply"

    def is_work_reply(self, topic: str) -> bool:
        """Whether ``topic`` is a node's response topic (a job may name no other)."""
        prefix = self.base + "/node/"
        node = topic[len(prefix):-len("/reply")] if topic.startswith(prefix) and topic.endswith("/reply") else ""
        return bool(node) and "/" not in node and "+" not in node and "#" not in node

    def parse_request(self, topic: str) -> tuple[str, str] | None:
        """(profile, command) of a request topic, else None."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 3 or parts[1] != "request":
            return None
        return parts[0], parts[2]

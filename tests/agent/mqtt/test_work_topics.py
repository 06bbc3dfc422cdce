"""The topics (agent/mqtt/topics.py): each one the agent builds, what it reads back from a topic
(profile and command, stream, Hermes site, node), where speak jobs go, what a worker subscribes
to, and which response topics a job may name."""

from __future__ import annotations

from agent.mqtt.topics import Topics

T = Topics("home/voice")


def test_shared_and_a_nodes_own_work_topics() -> None:
    assert T.work("speak", "rvc") == "home/voice/work/speak/rvc"
    assert T.shared_work("speak", "rvc") == "$share/voice-workers/home/voice/work/speak/rvc"
    assert T.work("speak", "rvc", "desk") == "home/voice/node/desk/work/speak/rvc"
    assert T.work("train", "kokoro", "desk") == "home/voice/node/desk/work/train/kokoro"
    assert T.parse_work("home/voice/work/speak/rvc") == ("speak", "rvc")
    assert T.parse_work("home/voice/node/desk/work/speak/rvc") == ("speak", "rvc")
    assert T.parse_work("home/voice/work/train/kokoro") == ("train", "kokoro")
    assert T.parse_work("home/voice/node/desk/work/train/kokoro") == ("train", "kokoro")
    assert T.work_stop("desk") == "home/voice/node/desk/work/stop"
    for other in ("home/voice/work/speak/", "home/voice/work/speak/rvc/x", "voice/work/speak/rvc",
                  "home/voice/node/desk/state", "home/voice/work/dance/rvc", "home/voice/node/desk/work/stop",
                  "home/voice/node/a/b/work/train/kokoro", "home/voice/node//work/train/kokoro",
                  "home/voice/node/desk/work/speak/rvc/work/speak/x", "home/voice/node/desk/work/speak/"):
        assert T.parse_work(other) is None, other


def test_a_job_may_name_only_a_nodes_reply_topic() -> None:
    assert T.work_reply("home-server") == "home/voice/node/home-server/reply"
    assert T.is_work_reply("home/voice/node/home-server/reply")
    for other in ("home/voice/kitchen/request/speak", "home/voice/node//reply", "home/voice/node/a/b/reply",
                  "home/voice/node/+/reply", "home/voice/node/#/reply", "other/node/a/reply", "home/voice/node/a/state"):
        assert not T.is_work_reply(other), other


def test_the_topics_a_profile_and_the_agent_use() -> None:
    assert (T.status, T.requests, T.streams) == ("home/voice/status", "home/voice/+/request/+", "home/voice/+/stream/+/+")
    assert T.request("kitchen", "speak") == "home/voice/kitchen/request/speak"
    assert T.response("kitchen", "speak") == "home/voice/kitchen/response/speak"
    assert T.event("kitchen", "speak.finished") == "home/voice/kitchen/event/speak.finished"
    assert T.state("kitchen") == "home/voice/kitchen/state"
    assert T.audio("kitchen", "r1") == "home/voice/kitchen/audio/r1"
    assert T.audio("kitchen", "r1", 0) == "home/voice/kitchen/audio/r1/0"
    assert (T.node_state("desk"), T.node_states) == ("home/voice/node/desk/state", "home/voice/node/+/state")
    assert T.HERMES_FRAMES == "hermes/audioServer/+/audioFrame" and T.WORK_GROUP == "voice-workers"


def test_a_request_topic_gives_its_profile_and_command() -> None:
    assert T.parse_request("home/voice/kitchen/request/speak") == ("kitchen", "speak")
    for other in ("home/voice/kitchen/response/speak", "home/voice/kitchen/request", "home/voice/kitchen/request/a/b",
                  "other/voice/kitchen/request/speak", "home/voicex/kitchen/request/speak", "voice/kitchen/request/speak"):
        assert T.parse_request(other) is None, other


def test_a_stream_topic_gives_its_profile_session_and_part() -> None:
    assert T.parse_stream("home/voice/kitchen/stream/s1/frame") == ("kitchen", "s1", "frame")
    assert Topics("voice").parse_stream("voice/kitchen/stream/s1/start") == ("kitchen", "s1", "start")
    for other in ("home/voice/kitchen/stream/s1", "home/voice/kitchen/stream/s1/frame/x", "home/voice/kitchen/streams/s1/frame",
                  "home/other/kitchen/stream/s1/frame", "other/voice/kitchen/stream/s1/frame"):
        assert T.parse_stream(other) is None, other


def test_a_hermes_audio_frame_gives_its_site() -> None:
    assert T.parse_hermes_frame("hermes/audioServer/kitchen/audioFrame") == "kitchen"
    for other in ("hermes/audioServer/kitchen", "hermes/audioServer/kitchen/audioFrame/x", "hermes/audioserver/kitchen/audioFrame",
                  "rhasspy/audioServer/kitchen/audioFrame", "hermes/audioServer/kitchen/playBytes"):
        assert T.parse_hermes_frame(other) is None, other


def test_a_node_state_topic_gives_its_node() -> None:
    assert T.parse_node_state("home/voice/node/desk/state") == "desk"
    for other in ("home/voice/node//state", "home/voice/node/a/b/state", "home/voice/node/desk/status",
                  "other/voice/node/desk/state", "home/voice/nodes/desk/state", "home/voice/node/desk/state/echo/1"):
        assert T.parse_node_state(other) is None, other

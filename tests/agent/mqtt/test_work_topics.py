"""The work topics (agent/mqtt/topics.py): where speak jobs go, what a worker subscribes to, and
which response topics a job may name."""

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
                  "home/voice/node/a/b/work/train/kokoro", "home/voice/node//work/train/kokoro"):
        assert T.parse_work(other) is None, other


def test_a_job_may_name_only_a_nodes_reply_topic() -> None:
    assert T.work_reply("home-server") == "home/voice/node/home-server/reply"
    assert T.is_work_reply("home/voice/node/home-server/reply")
    for other in ("home/voice/kitchen/request/speak", "home/voice/node//reply", "home/voice/node/a/b/reply",
                  "home/voice/node/+/reply", "other/node/a/reply", "home/voice/node/a/state"):
        assert not T.is_work_reply(other), other

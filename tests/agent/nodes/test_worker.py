"""What a worker makes for others (agent/nodes/worker.py): a provider whose speech needs a server of
the worker's own (GPT-SoVITS) only once the worker has one (VOICE_AGENT_SOVITS_URL)."""

from __future__ import annotations

from pathlib import Path

from agent.layout import Layout
from agent.nodes.work import SpeakWork, read_reply
from agent.nodes.worker import SpeakWorker
from agent.speak.engines import ProviderPool


def worker(tmp_path: Path, own: dict[str, dict[str, object]] | None = None) -> SpeakWorker:
    return SpeakWorker("desk", Layout(tmp_path), ProviderPool(), None, lambda: "household", lambda node: None,  # type: ignore[arg-type]
                       own=own)


def test_a_worker_without_its_own_sovits_server_takes_no_sovits_work(tmp_path: Path) -> None:
    bare = worker(tmp_path)
    assert bare.providers() == ["rvc"] and bare.unserved() == {"sovits"}
    served = worker(tmp_path, {"sovits": {"server_url": "http://127.0.0.1:9880"}})
    assert served.providers() == ["sovits", "rvc"] and served.unserved() == set()


def test_a_worker_without_its_own_server_declines_a_sovits_job_at_once(tmp_path: Path) -> None:
    said: list[bytes] = []
    job = SpeakWork(id="home-1", home="home", home_url="http://home:8080", provider="sovits", text="Hi.",
                    settings={}, files={}).sealed("household")
    worker(tmp_path).take("sovits", job.to_json(), said.append)
    replies = [read_reply(reply) for reply in said]
    assert [(r.kind, r.code) for r in replies] == [("declined", "provider_unavailable")], replies

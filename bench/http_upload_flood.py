"""40 parallel 30 MiB uploads to POST /api/profiles/default/commands/record (issue 18, round two),
against the agent with its default settings (VOICE_AGENT_RECORD_QUEUE_BYTES 64 MiB): the agent's
resident memory before and at its peak (the agent alone, and with its children), and the answers.
Run by hand: `.venv/bin/python bench/http_upload_flood.py [uploads] [MiB]`."""

from __future__ import annotations

import collections
import sys
import tempfile
import threading
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess, make_home  # noqa: E402
from tests.hostile import PeakRss  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402

MB = 1024 * 1024


def main() -> None:
    uploads = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        port = free_port()
        agent = AgentProcess(make_home(root / "home"), broker.port, {
            "VOICE_AGENT_BASE_TOPIC": "flood", "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port),
        }).start()
        try:
            agent.wait_log("ready")
            assert agent.process is not None
            url = f"http://127.0.0.1:{port}/api/profiles/default/commands/record"
            body = b"\x01" * (size * MB)
            answers: list[str] = []

            def send() -> None:
                try:
                    answer = requests.post(url, data=body, headers={"Content-Type": "audio/wav"}, timeout=300)
                    answers.append(f"{answer.status_code} {answer.json().get('code', 'ok')}")
                except requests.ConnectionError:
                    answers.append("connection closed")

            with PeakRss(agent.process.pid, children=False) as alone, PeakRss(agent.process.pid) as family:
                before, before_family = alone.now(), family.now()
                senders = [threading.Thread(target=send) for _ in range(uploads)]
                for thread in senders:
                    thread.start()
                for thread in senders:
                    thread.join()
            print(f"{uploads} x {size} MiB to the record route: agent RSS {before / MB:.0f} MB before, "
                  f"peak {alone.peak / MB:.0f} MB (+{(alone.peak - before) / MB:.0f}); with its children "
                  f"{before_family / MB:.0f} -> {family.peak / MB:.0f} MB; answers {dict(collections.Counter(answers))}")
        finally:
            agent.stop()
            broker.stop()


if __name__ == "__main__":
    main()

"""What the web page asks of the agent, over plain HTTP against the real agent: the page's files
(without the token, the API with it), voice.json's schema and the trainers', the event stream,
a sample's WAV, the report picture, a job's log, the GPU; refusals with the same codes and
field-level problems as over MQTT; requests a hostile site could make a browser send."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import AgentProcess, Probe
from tests.e2e.browser import api, base_url, record, web_agent
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

PROFILES = ("default", "kitchen", "samples", "jobs")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = web_agent(tmp_path_factory.mktemp("web-api"), broker, PROFILES).start()
    process.wait_log("ready")
    yield process
    process.stop()


def get(agent: AgentProcess, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(f"{base_url(agent)}{path}", timeout=60, **kwargs)


def test_the_page_and_its_files_are_served_with_a_strict_policy(agent: AgentProcess) -> None:
    page = get(agent, "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert '<script type="module" src="/page/app.js">' in page.text
    script = get(agent, "/page/app.js")
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert get(agent, "/page/style.css").headers["Content-Type"].startswith("text/css")
    for missing in ("/page/nope.js", "/page/..%2F..%2Fapi.py", "/page/%2e%2e%2fpage.py", "/page/.hidden.js"):
        assert get(agent, missing).status_code == 404, missing


def test_voice_json_and_the_trainers_described_for_forms(agent: AgentProcess) -> None:
    described = api(agent, "default", "config.schema").json()["data"]
    tts = described["schema"]["$defs"]["TtsConfig"]["properties"]
    assert tts["provider"]["enum"] == ["piper", "kokoro", "sovits", "rvc"]
    piper = described["schema"]["$defs"]["PiperSettings"]["properties"]["speakingRate"]
    assert (piper["minimum"], piper["maximum"], piper["default"]) == (0.5, 2.0, 1.0) and piper["description"]
    assert described["providers"]["piper"]["voice_field"] == "model"
    assert described["providers"]["kokoro"]["voice_field"] == "voice"
    assert described["providers"]["sovits"]["actions"] == ["start", "restart", "stop", "status", "logs"]
    assert "tts.sovits.python" in described["locked"] and "access" in described["locked"]
    trainers = api(agent, "default", "train.trainers").json()["data"]["trainers"]
    assert {"kokoro", "rvc", "counting"} <= set(trainers)
    steps = trainers["counting"]["params"]["properties"]["steps"]
    assert (steps["minimum"], steps["maximum"], steps["default"]) == (1, 100000, 40)
    assert trainers["rvc"]["params"]["properties"]["totalEpochs"]["minimum"] == 100


def test_refusals_name_their_fields_as_over_mqtt(agent: AgentProcess, broker: Mosquitto) -> None:
    probe = Probe(broker.port, base=f"web-{base_url(agent).rsplit(':', 1)[1]}")
    try:
        for command, body, code, field in [
            ("config.set", {"changes": {"tts": {"piper": {"speakingRate": 7}}}}, "invalid_config", "tts.piper.speakingRate"),
            ("train", {"provider": "counting", "params": {"steps": 0}}, "invalid_params", "params.steps"),
            ("train", {"provider": "counting", "speaker": "no spaces"}, "invalid_payload", "speaker"),
            ("samples.export", {"target": "piper"}, "invalid_payload", "target"),
        ]:
            over_http = api(agent, "kitchen", command, body)
            over_mqtt = probe.request("kitchen", command, body)
            assert over_http.status_code == 400, over_http.text
            assert over_http.json()["code"] == over_mqtt["code"] == code
            problems = over_http.json()["data"]["problems"]
            assert problems == over_mqtt["data"]["problems"] and problems[0]["field"] == field, problems
    finally:
        probe.close()


def events(agent: AgentProcess, profile: str, until: Any, timeout: float = 60, token: str | None = None) -> list[dict[str, Any]]:
    """Messages of GET /api/events until ``until(messages)`` holds (the token as EventSource sends it)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    params = {"profile": profile, **({"access_token": token} if token else {})}
    with requests.get(f"{base_url(agent)}/api/events", params=params, stream=True, timeout=timeout) as answer:
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/event-stream"
        for line in answer.iter_lines(decode_unicode=True):
            if line and line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if until(seen):
                    return seen
            assert time.monotonic() < deadline, seen
    raise AssertionError(f"the stream ended: {seen}")


def test_the_event_stream_starts_with_the_state_then_pushes_events(agent: AgentProcess) -> None:
    import threading

    def change() -> None:  # another profile's first: its events must not reach kitchen's stream
        time.sleep(1.0)
        assert api(agent, "default", "config.set", {"changes": {"tts": {"piper": {"speakingRate": 1.2}}}}).status_code == 200
        time.sleep(0.5)
        assert api(agent, "kitchen", "config.set", {"changes": {"tts": {"piper": {"speakingRate": 1.1}}}}).status_code == 200

    worker = threading.Thread(target=change)
    worker.start()
    seen = events(agent, "kitchen", lambda s: any(m.get("type") == "config.reloaded" for m in s))
    worker.join()
    assert seen[0]["kind"] == "state" and seen[0]["key"] == "kitchen" and "readiness" in seen[0]["data"]
    assert seen[1]["kind"] == "state" and seen[1]["key"] == "gpu" and seen[1]["data"]["available"] is False
    reloaded = [m for m in seen if m.get("type") == "config.reloaded"]
    assert reloaded[0]["profile"] == "kitchen" and reloaded[0]["data"]["changed"] is True
    assert all(m.get("profile", m.get("key")) in ("kitchen", "gpu") for m in seen)  # never another profile's


def test_unknown_profile_for_the_stream(agent: AgentProcess) -> None:
    answer = get(agent, "/api/events", params={"profile": "nobody"})
    assert answer.status_code == 404 and answer.json()["code"] == "unknown_profile"
    assert get(agent, "/api/events", params={"profile": "../etc"}).json()["code"] == "invalid_profile"


def test_a_samples_wav_and_the_report_picture(agent: AgentProcess) -> None:
    sample = record(agent, "samples", "The washing machine has finished, please hang the clothes outside.")
    audio = get(agent, f"/api/profiles/samples/samples/{sample['id']}/audio")
    assert audio.status_code == 200 and audio.headers["Content-Type"] == "audio/wav"
    on_disk = next((agent.home / "profiles" / "samples" / "out" / "voices" / "samples").glob(f"*{sample['id']}*.wav"))
    assert audio.content == on_disk.read_bytes()
    bad = get(agent, "/api/profiles/samples/samples/..%2F..%2Fetc%2Fvoice.json/audio")
    assert bad.status_code in (400, 404)
    bad = get(agent, "/api/profiles/samples/samples/not-an-id/audio")
    assert bad.status_code == 400 and bad.json()["data"]["problems"][0]["field"] == "sample"
    unknown = get(agent, "/api/profiles/samples/samples/20200101-000000-abcdef/audio")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_sample"

    assert get(agent, "/api/profiles/kitchen/samples/report.png").json()["code"] == "no_report"
    assert api(agent, "samples", "samples.report").status_code == 200
    picture = get(agent, "/api/profiles/samples/samples/report.png")
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG")
    readiness = api(agent, "samples", "samples.readiness").json()["data"]["readiness"]
    assert readiness["rvc"]["progress"] == pytest.approx(min(1 / 50, sample["duration"] / 600), abs=0.001)
    assert readiness["sovits"]["progress"] in (0.0, 1.0)


def test_a_jobs_log_its_running_device_and_the_gpu(agent: AgentProcess) -> None:
    def start(steps: int, step_seconds: float) -> str:
        answer = api(agent, "jobs", "train", {"provider": "counting", "speaker": "owner", "when": "now",
                                              "params": {"steps": steps, "step_seconds": step_seconds}})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["data"]["job"]["id"])

    def state(job: str) -> str:
        return str(api(agent, "jobs", "train.status", {"job": job}).json()["data"]["job"]["state"])

    first = start(5, 0.01)
    deadline = time.monotonic() + 60
    while state(first) != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    second = start(2000, 0.05)
    deadline = time.monotonic() + 60
    while not (status := api(agent, "jobs", "gpu.status").json()["data"])["training"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status["gpu"]["available"] is False and status["holders"] == []  # no GPU here: nobody holds one
    assert (status["training"]["job"], status["training"]["device"]) == (second, "cpu") and status["training"]["pid"] > 0
    api(agent, "jobs", "train.cancel", {"job": second})

    lines = api(agent, "jobs", "train.logs", {"job": first, "lines": 500}).json()["data"]["lines"]
    assert lines[0].startswith("--- ") and f"job {first} attempt 1 on cpu" in lines[0]
    assert any("training 5/5" in line for line in lines) and not any(second in line for line in lines)
    assert len(api(agent, "jobs", "train.logs", {"job": first, "lines": 2}).json()["data"]["lines"]) == 2
    assert api(agent, "jobs", "train.logs", {"job": "20200101000000-abcdef"}).json()["code"] == "unknown_job"
    assert api(agent, "kitchen", "train.logs", {"job": first}).json()["code"] == "unknown_job"  # another profile's


def test_a_recordings_json_envelope_may_be_as_large_as_a_recording(agent: AgentProcess) -> None:
    sample = record(agent, "kitchen", "A recording sent as JSON with its words is larger than a plain request.")
    assert sample["duration"] > 2


def test_what_another_site_could_make_a_browser_send_is_refused(agent: AgentProcess) -> None:
    on_disk = (agent.home / "profiles" / "kitchen" / "etc" / "voice.json").read_bytes()
    forged = requests.post(f"{base_url(agent)}/api/profiles/kitchen/commands/config.set", timeout=30,
                           data=json.dumps({"changes": {"tts": {"provider": "kokoro"}}}),
                           headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert forged.status_code == 403 and forged.json()["code"] == "forbidden"
    rebound = get(agent, "/api/health", headers={"Host": f"evil.example:{base_url(agent).rsplit(':', 1)[1]}"})
    assert rebound.status_code == 403 and "loopback" in rebound.json()["error"]
    assert (agent.home / "profiles" / "kitchen" / "etc" / "voice.json").read_bytes() == on_disk
    own = get(agent, "/api/health", headers={"Origin": base_url(agent)})
    assert own.status_code == 200
    proxied = get(agent, "/api/health", headers={"Origin": base_url(agent).replace("http:", "https:")})
    assert proxied.status_code == 200  # the same page through a TLS proxy


def test_with_a_token_the_page_loads_and_the_api_wants_it(tmp_path: Path, broker: Mosquitto) -> None:
    agent = web_agent(tmp_path, broker, ("default",), VOICE_AGENT_HTTP_TOKEN="s3cret-kitchen").start()
    try:
        agent.wait_log("ready")
        assert get(agent, "/").status_code == 200 and get(agent, "/page/api.js").status_code == 200
        assert get(agent, "/api/health").status_code == 401
        assert api(agent, "default", "config.schema").status_code == 401
        assert get(agent, "/api/events", params={"profile": "default"}).status_code == 401
        assert api(agent, "default", "config.schema", token="s3cret-kitchen").status_code == 200
        seen = events(agent, "default", lambda s: len(s) >= 2, token="s3cret-kitchen")
        assert [m["key"] for m in seen] == ["default", "gpu"]
    finally:
        agent.stop()



def test_an_open_event_stream_ends_when_the_agent_stops(tmp_path: Path, broker: Mosquitto) -> None:
    agent = web_agent(tmp_path, broker, ("default",)).start()
    agent.wait_log("ready")
    with requests.get(f"{base_url(agent)}/api/events", params={"profile": "default"}, stream=True, timeout=30) as answer:
        lines = answer.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line.startswith("data: "))
        started = time.monotonic()
        assert agent.stop() == 0
        assert time.monotonic() - started < 10  # the stream does not hold the agent up
        assert all(not line.startswith("data: ") or "state" in line or "event" in line for line in lines)  # then it ends

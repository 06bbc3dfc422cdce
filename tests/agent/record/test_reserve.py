"""Room for a recording before its body is read (the HTTP door): its bytes are held in the same
budget as the recordings waiting to be scored (VOICE_AGENT_RECORD_QUEUE_BYTES), so a flood of
uploads is ``busy`` from their lengths; ``submit``/``enroll`` take the held bytes over, and they
come back once, whatever ends first. The command table's entry does the refusals that need no
body first: the profile, voice.json's access, a switched-off record path."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.commands import command_table, reserve
from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.record.analysis import Analysis
from agent.record.requests import RecordRequest
from agent.record.service import RecordService
from tests.agent.record.test_bounds import LIMIT, held_up
from tests.agent.record.test_service import FakeAnalyser, scored


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[tuple[RecordService, FakeAnalyser, Layout]]:
    for profile in ("default", "quiet"):
        (tmp_path / "profiles" / profile / "etc").mkdir(parents=True)
    (tmp_path / "profiles" / "quiet" / "etc" / "voice.json").write_text(json.dumps({
        "record": {"enabled": False}, "access": {"commands": {"speaker.enroll": False}}}))
    layout, events, analyser = Layout(tmp_path), EventBus(), FakeAnalyser()
    records = RecordService(layout, ConfigStore(layout, events), events, StateBoard(), 1, analyser, queue_bytes=LIMIT)
    yield records, analyser, layout
    analyser.gate = None
    records.stop()


def busy(call: Any) -> str:
    with pytest.raises(ServiceError) as refused:
        call()
    return refused.value.code


def test_room_up_to_the_budget_is_held_one_byte_more_is_busy(service: Any) -> None:
    records, _, _ = service
    first = records.reserve("default", LIMIT - 40)
    second = records.reserve("default", 40)  # exactly at the bound
    assert busy(lambda: records.reserve("default", 1)) == "busy"
    assert records._bytes.held == LIMIT  # the refusal held nothing
    second.release()
    assert records.reserve("default", 40).size == 40
    first.release()


def test_alone_a_recording_larger_than_the_budget_has_room(service: Any) -> None:
    records, _, _ = service
    records.reserve("default", LIMIT + 1).release()
    assert records._bytes.held == 0


def test_a_switched_off_record_path_is_refused_before_the_body(service: Any) -> None:
    records, _, _ = service
    assert busy(lambda: records.reserve("quiet", 10)) == "record_disabled"
    records.reserve("quiet", 10, enroll=True).release()  # enrolling the owner's voice is not recording
    assert records._bytes.held == 0


def test_the_job_takes_the_held_bytes_over_until_it_is_scored(service: Any) -> None:
    records, analyser, _ = service
    analyser.results += [Analysis(2.0, [scored(80.0)], []) for _ in range(2)]
    first = held_up(analyser, records, 10)
    hold = records.reserve("default", 60)  # the body's length: a JSON envelope is larger than its WAV
    waiting = records.submit("default", RecordRequest(audio=b"R" * 40), hold)
    hold.release()  # the door's release, after the job took them over: nothing
    assert records._bytes.held == 70
    assert busy(lambda: records.reserve("default", LIMIT - 69)) == "busy"
    analyser.gate.set()  # type: ignore[union-attr]
    assert first.result(10)["kept"] and waiting.result(10)["kept"]
    assert records._bytes.held == 0


def test_held_bytes_come_back_when_submit_refuses_the_recording(service: Any) -> None:
    records, analyser, _ = service
    analyser.results += [Analysis(2.0, [scored(80.0)], []) for _ in range(2)]
    scoring, waiting = held_up(analyser, records, 10), records.submit("default", RecordRequest(audio=b"R" * 10))
    hold = records.reserve("default", 10)
    assert busy(lambda: records.submit("default", RecordRequest(audio=b"R" * 10), hold)) == "busy"  # the queue of one is full
    hold.release()  # the door's, after the refusal: given back once, not twice
    assert records._bytes.held == 20
    analyser.gate.set()  # type: ignore[union-attr]
    assert scoring.result(10)["kept"] and waiting.result(10)["kept"]
    assert records._bytes.held == 0


def test_a_hold_given_back_before_submit_is_taken_again(service: Any) -> None:
    """The client left while its request was being validated: the job holds its own bytes."""
    records, analyser, _ = service
    analyser.results.append(Analysis(2.0, [scored(80.0)], []))
    first = held_up(analyser, records, 10)
    hold = records.reserve("default", 30)
    hold.release()
    waiting = records.enroll("default", RecordRequest(audio=b"R" * 30), hold)
    assert records._bytes.held == 40
    analyser.gate.set()  # type: ignore[union-attr]
    assert first.result(10)["kept"] and waiting.result(10)["enrolled"]
    assert records._bytes.held == 0


def test_stopping_gives_back_what_a_held_job_waited_with(service: Any) -> None:
    records, analyser, _ = service
    analyser.results.append(Analysis(2.0, [scored(80.0)], []))
    first = held_up(analyser, records, 10)
    waiting = records.submit("default", RecordRequest(audio=b"R" * 10), records.reserve("default", 50))
    stopping = threading.Thread(target=records.stop)
    stopping.start()
    assert busy(lambda: waiting.result(10)) == "shutting_down"  # taken off the queue while the first is scored
    analyser.gate.set()  # type: ignore[union-attr]
    stopping.join()
    assert first.result(10)["kept"]
    assert records._bytes.held == 0


# -- the command table's entry ---------------------------------------------------------------------
def table(records: RecordService, layout: Layout) -> dict[str, Any]:
    core = SimpleNamespace(records=records, samples=None, layout=layout, configs=records._configs)
    return command_table(core)  # type: ignore[arg-type]


@pytest.mark.parametrize(("profile", "command", "code"), [
    ("nobody", "record", "unknown_profile"),
    ("no/pe", "record", "invalid_profile"),
    ("default", "nothing", "unknown_command"),
    ("default", "samples.list", "invalid_payload"),  # takes no recording
    ("quiet", "speaker.enroll", "forbidden"),
    ("quiet", "record", "record_disabled"),
])
def test_the_entry_refuses_what_needs_no_body_and_holds_nothing(service: Any, profile: str, command: str,
                                                                code: str) -> None:
    records, _, layout = service
    commands = table(records, layout)
    assert busy(lambda: reserve(commands, layout.exists, profile, command, 10)) == code
    assert records._bytes.held == 0


def test_the_entrys_room_runs_the_command_through_its_guard(service: Any) -> None:
    """Access is asked again when the command runs: voice.json may change while a body arrives."""
    records, analyser, layout = service
    commands = table(records, layout)
    room = reserve(commands, lambda p: True, "default", "speaker.enroll", 30)
    assert records._bytes.held == 30
    voice = layout.profile_dir("default") / "etc" / "voice.json"
    voice.write_text(json.dumps({"access": {"commands": {"speaker.enroll": False}}}))
    records._configs.reload("default")
    assert busy(lambda: room.run("default", RecordRequest(audio=b"R" * 30), None)) == "forbidden"
    room.hold.release()
    assert records._bytes.held == 0

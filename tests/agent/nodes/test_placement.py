"""Where speech runs (``place_speak``) and when a home stops waiting for a worker (``JobWatch``),
with a fake clock: a decline goes to another try, a silent or departed worker ends the wait."""

from __future__ import annotations

from agent.nodes.placement import (ANY_WORKER, NO_WORKER, WORKER_FAILED, WORKER_LOST, Bounds, JobWatch, Place,
                                   place_speak, place_train)
from agent.nodes.state import Ability, NodeState


def node(name: str, worker: bool = True, providers: tuple[str, ...] = ("piper", "rvc")) -> NodeState:
    return NodeState(node=name, worker=worker, providers=[Ability(provider=p) for p in providers])


DESK = node("desk")


def test_local_and_this_nodes_own_name_run_here() -> None:
    assert place_speak("local", "rvc", "home", [DESK], True) == Place(None)
    assert place_speak("home", "rvc", "home", [DESK], True) == Place(None)


def test_auto_takes_a_worker_with_the_provider_else_runs_here_without_a_fallback() -> None:
    assert place_speak("auto", "rvc", "home", [node("home"), DESK], True) == Place(ANY_WORKER, workers=1)
    assert place_speak("auto", "rvc", "home", [DESK, node("attic")], True) == Place(ANY_WORKER, workers=2)
    assert place_speak("auto", "rvc", "home", [node("desk", worker=False)], True) == Place(None)
    assert place_speak("auto", "rvc", "home", [node("desk", providers=("piper",))], True) == Place(None)
    assert place_speak("auto", "rvc", "home", [node("home")], True) == Place(None)  # itself is no worker of its own
    assert place_speak("auto", "rvc", "home", [DESK], False) == Place(None)  # MQTT 3.1.1: a single node


def test_a_named_node_runs_it_while_online_else_here_with_no_worker() -> None:
    assert place_speak("desk", "rvc", "home", [DESK], True, known=DESK) == Place("desk")
    gone = place_speak("desk", "rvc", "home", [], True, known=DESK.model_copy(update={"status": "offline"}))
    assert (gone.node, gone.code) == (None, NO_WORKER) and "offline" in gone.reason
    never = place_speak("desk", "rvc", "home", [], True, known=None)
    assert (never.code, "has not been heard of" in never.reason) == (NO_WORKER, True)
    idle = place_speak("desk", "rvc", "home", [node("desk", worker=False)], True, known=node("desk", worker=False))
    assert (idle.node, idle.code) == (None, NO_WORKER) and "takes no rvc work" in idle.reason
    single = place_speak("desk", "rvc", "home", [DESK], False, known=DESK)
    assert (single.node, single.code) == (None, NO_WORKER) and "MQTT 5" in single.reason


BOUNDS = Bounds(first_reply_s=3.0, silence_s=10.0, tries=3)


def test_no_first_word_within_the_bound_is_no_worker() -> None:
    watch = JobWatch(BOUNDS, now=100.0)
    assert watch.verdict(102.9).action == "wait" and watch.verdict(102.9).until == 103.0
    ended = watch.verdict(103.0)
    assert (ended.action, ended.code) == ("fail", NO_WORKER)


def test_a_decline_is_tried_again_a_bounded_number_of_times() -> None:
    watch = JobWatch(BOUNDS, now=0.0, workers=5)
    watch.declined("desk", "busy", "desk: busy", 0.1)
    assert watch.verdict(0.1).action == "retry"
    watch.resent(0.2)
    assert watch.verdict(0.2).action == "wait"  # the second try waits for its own answer
    watch.declined("attic", "busy", "attic: busy", 0.3)
    watch.resent(0.4)
    watch.declined("desk", "provider_unavailable", "desk: no rvc", 0.5)
    ended = watch.verdict(0.5)
    assert (ended.action, ended.code) == ("fail", NO_WORKER)
    assert "desk: busy" in ended.reason and "attic: busy" in ended.reason and "desk: no rvc" in ended.reason


def test_the_decline_of_the_only_worker_is_not_tried_again() -> None:
    for workers in (1, 0):
        watch = JobWatch(BOUNDS, now=0.0, workers=workers)
        watch.declined("desk", "busy", "desk: busy", 0.1)
        ended = watch.verdict(0.1)
        assert (ended.action, ended.code) == ("fail", NO_WORKER) and "desk: busy" in ended.reason
    two = JobWatch(BOUNDS, now=0.0, workers=2)
    two.declined("desk", "busy", "", 0.1)
    assert two.verdict(0.1).action == "retry"
    two.resent(0.2)
    two.declined("attic", "busy", "", 0.3)
    assert two.verdict(0.3).action == "fail"


def test_a_worker_that_took_it_is_waited_for_while_it_says_it_is_alive() -> None:
    watch = JobWatch(BOUNDS, now=0.0)
    watch.accepted("desk", 1.0)
    for now in (5.0, 14.0, 23.0):
        assert watch.verdict(now).action == "wait"
        watch.alive("desk", now)
    watch.alive("attic", 30.0)  # another node's word does not keep this job's worker alive
    ended = watch.verdict(33.0)
    assert (ended.action, ended.code) == ("fail", WORKER_LOST) and "desk" in ended.reason


def test_the_workers_last_will_ends_the_wait_at_once() -> None:
    watch = JobWatch(BOUNDS, now=0.0)
    watch.accepted("desk", 1.0)
    watch.lost("attic")
    assert watch.verdict(1.1).action == "wait"
    watch.lost("desk")
    ended = watch.verdict(1.1)
    assert (ended.action, ended.code) == ("fail", WORKER_LOST)


def test_a_late_decline_after_a_worker_took_it_changes_nothing_and_done_is_done() -> None:
    watch = JobWatch(BOUNDS, now=0.0)
    watch.accepted("desk", 0.5)
    watch.declined("attic", "busy", "", 0.6)
    assert watch.verdict(0.7).action == "wait"
    watch.done()
    watch.lost("desk")
    assert watch.verdict(99.0).action == "done"


def test_a_worker_that_failed_says_why() -> None:
    watch = JobWatch(BOUNDS, now=0.0)
    watch.accepted("desk", 0.5)
    watch.failed("desk", "blob_fetch_failed", "HTTP 401")
    ended = watch.verdict(0.6)
    assert (ended.code, "blob_fetch_failed" in ended.reason) == (WORKER_FAILED, True)


def test_a_worker_that_says_alive_and_never_sends_audio_is_not_waited_for_ever() -> None:
    """A worker whose engine hangs still ticks ``alive`` from another thread: its words keep the
    silence bound away, but between pieces of audio it has ``audio_s`` at most."""
    bounds = Bounds(first_reply_s=3.0, silence_s=10.0, tries=3, audio_s=50.0)
    watch = JobWatch(bounds, now=0.0)
    watch.accepted("desk", 1.0)
    for now in range(5, 50, 5):
        watch.alive("desk", float(now))
        assert watch.verdict(float(now)).action == "wait"
    watch.audio("desk", 45.0)  # a sentence came: another audio_s for the next
    for now in range(50, 95, 5):
        watch.alive("desk", float(now))
        assert watch.verdict(float(now)).action == "wait"
    watch.alive("desk", 95.0)
    ended = watch.verdict(95.0)
    assert (ended.action, ended.code) == ("fail", WORKER_LOST) and "audio" in ended.reason


def test_training_goes_only_to_a_worker_that_lists_the_trainer() -> None:
    trains = NodeState(node="desk", worker=True, providers=[Ability(provider="kokoro", trains=True)])
    speaks = NodeState(node="attic", worker=True, providers=[Ability(provider="kokoro", trains=False)])
    assert place_train("auto", "kokoro", "home", [trains, speaks], True) == Place(ANY_WORKER, workers=1)
    assert place_train("auto", "kokoro", "home", [speaks], True) == Place(None)  # here, no fallback code
    assert place_train("auto", "rvc", "home", [trains], True) == Place(None)
    assert place_train("desk", "kokoro", "home", [trains], True, known=trains) == Place("desk")
    refused = place_train("attic", "kokoro", "home", [speaks], True, known=speaks)
    assert (refused.node, refused.code) == (None, NO_WORKER) and "takes no kokoro training" in refused.reason
    gone = place_train("desk", "kokoro", "home", [], True, known=trains)
    assert (gone.node, gone.code) == (None, NO_WORKER) and "offline" in gone.reason
    assert place_train("local", "kokoro", "home", [trains], True) == Place(None)


def test_a_silent_training_says_it_sent_no_progress() -> None:
    watch = JobWatch(Bounds(first_reply_s=3.0, silence_s=10.0, audio_s=20.0, output="progress"), now=0.0)
    watch.accepted("desk", 1.0)
    for now in range(2, 22):
        watch.alive("desk", float(now))
    ended = watch.verdict(21.0)
    assert (ended.action, ended.code) == ("fail", WORKER_LOST) and "sent no progress for 20 s" in ended.reason

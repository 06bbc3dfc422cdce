"""Speech made by a worker node, in one process: the home's pipeline with its remote engine, a
broker stand-in that hands each job to one worker in turn (as a shared subscription does), and
real ``SpeakWorker``s whose engines say which node made the audio. What falls back, with which
code, and that every wait ends."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path

import pytest

from agent.blobs.index import BlobIndex
from agent.config.model import VoiceConfig
from agent.layout import Layout
from agent.nodes.placement import Bounds
from agent.nodes.registry import NodeRegistry
from agent.nodes.state import Ability, NodeState
from agent.nodes.worker import SpeakWorker
from agent.speak.budget import AudioBudget
from agent.speak.engines import ProviderPool
from agent.speak.pipeline import SpeakJob, run_speak
from agent.speak.remote import RemoteSpeech
from tests.agent.nodes.standins import Blobs, Broker
from tests.agent.speak.test_pipeline import Engine, pcm
from tests.contexts import loose_context

HOME, HERE, DESK, ATTIC = 1, 2, 3, 4  # the sample value each engine speaks with


class Household:
    def __init__(self, tmp_path: Path, workers: tuple[str, ...] = ("desk",), bounds: Bounds = Bounds(1.0, 1.0, 3),
                 depth: int = 2) -> None:
        voices = tmp_path / "home" / "voices"
        (voices / "rvc-models" / "anna").mkdir(parents=True)
        (voices / "rvc-models" / "anna" / "anna.pth").write_bytes(b"model")
        (voices / "rvc-models" / "anna" / "anna.index").write_bytes(b"index")
        (voices / "rvc-models" / "hubert_base.pt").write_bytes(b"encoder")
        self.ctx = loose_context(tmp_path / "home", (voices,))
        self.registry = NodeRegistry()
        self.index = BlobIndex(lambda: [voices])
        self.remote = RemoteSpeech("home", "http://home:8080", self.registry, self.index, bounds,
                                   token=lambda: "household")
        self.engines = {"rvc": Engine("rvc", HERE), "piper": Engine("piper", HOME)}
        self.pool = ProviderPool(factory=lambda name: self.engines[name])  # type: ignore[arg-type,return-value]
        self.blobs = Blobs(self.index)
        self.worker_engines: dict[str, Engine] = {}
        self.urls = {"home": "http://home:8080"}  # the home's door as its state document says
        made = {}
        for name in workers:
            engine = self.worker_engines[name] = Engine("rvc", {"desk": DESK, "attic": ATTIC}[name])
            pool = ProviderPool(factory=lambda _, engine=engine: engine)  # type: ignore[misc]
            made[name] = SpeakWorker(name, Layout(tmp_path / name), pool, self.blobs, lambda: "household",  # type: ignore[arg-type]
                                     lambda node: self.urls.get(node), depth=depth, alive_s=0.05)
            self.hear(name)
        self.workers = made
        self.broker = Broker("speak")
        self.broker.connect(self.remote, made)
        self.remote.use(self.broker)
        self.fallbacks: list[tuple[str, ...]] = []

    def hold(self, name: str, started: threading.Event | None = None, timeout: float = 30) -> threading.Event:
        """Worker ``name``'s engine waits in each synthesis (saying so on ``started``) until the event
        returned is set, or ``timeout`` seconds."""
        release = threading.Event()
        engine = self.worker_engines[name]
        original = engine.synthesize

        def held(*args):  # type: ignore[no-untyped-def]
            if started is not None:
                started.set()
            release.wait(timeout)
            yield from original(*args)

        engine.synthesize = held  # type: ignore[method-assign]
        return release

    def hear(self, name: str, status: str = "online") -> None:
        state = NodeState(node=name, status=status, worker=True, providers=[Ability(provider="rvc")])  # type: ignore[arg-type]
        self.registry.heard(name, state.to_json())

    def speak(self, run_on: str, text: str = "One. Two.", stream: bool = False) -> object:
        for engine in [*self.engines.values(), *self.worker_engines.values()]:
            engine.made = 0
        config = VoiceConfig.model_validate({"runOn": {"speak": {"rvc": run_on}}, "tts": {"rvc": {"speakerId": "anna"}}})
        job = SpeakJob("j1", text, "rvc", None, None, stream, time.perf_counter())
        self.streamed: list[tuple[int, bytes]] = []
        return run_speak(job, config, self.ctx, self.pool, None, lambda seq, chunk: self.streamed.append((seq, chunk.pcm)),
                         lambda *said: self.fallbacks.append(said), budget=AudioBudget(3600),
                         remote=lambda name: self.remote.pick(config.run_on.speak_on(name), name))


def test_a_worker_makes_the_speech_from_the_homes_files_by_hash(tmp_path: Path) -> None:
    home = Household(tmp_path)
    result = home.speak("desk")
    assert (result.provider, result.node, result.pcm, result.fallback_code) == ("rvc", "desk", pcm(DESK, 2), None)  # type: ignore[attr-defined]
    assert home.engines["rvc"].calls == 0 and home.broker.sent == ["desk", "desk"]  # the first sentence, then the rest
    text, settings, ctx = home.worker_engines["desk"].asked[0]
    assert text == "One." and settings.speaker_id == "anna"  # type: ignore[attr-defined]
    linked = ctx.voices_dirs[0] / "rvc-models" / "anna"  # the fetched files, as the engine looks for them
    assert (linked / "anna.pth").read_bytes() == b"model" and (linked / "anna.index").read_bytes() == b"index"
    assert Path(settings.content_encoder_path).read_bytes() == b"encoder"  # type: ignore[attr-defined]
    assert len(set(home.blobs.asked)) == 3


def test_auto_goes_to_a_worker_and_runs_here_when_none_is_online(tmp_path: Path) -> None:
    home = Household(tmp_path)
    assert home.speak("auto").node == "desk"  # type: ignore[attr-defined]
    home.hear("desk", "offline")
    result = home.speak("auto")
    assert (result.node, result.pcm, result.fallback_code) == (None, pcm(HERE, 2), None)  # type: ignore[attr-defined]


def test_with_a_link_that_cannot_carry_work_speech_stays_here(tmp_path: Path) -> None:
    home = Household(tmp_path)
    home.broker.ready = lambda: False  # type: ignore[method-assign]  # a broker without MQTT 5
    assert (home.speak("auto").node, home.speak("auto").fallback_code) == (None, None)  # type: ignore[attr-defined]
    assert home.speak("desk").fallback_code == "no_worker" and home.broker.sent == []  # type: ignore[attr-defined]


def test_a_named_worker_that_is_offline_falls_back_here_at_once_with_no_worker(tmp_path: Path) -> None:
    home = Household(tmp_path)
    home.hear("desk", "offline")
    result = home.speak("desk")
    assert (result.provider, result.node, result.pcm, result.fallback_code) == ("rvc", None, pcm(HERE, 2), "no_worker")  # type: ignore[attr-defined]
    assert home.broker.sent == []  # nothing published to a node known to be gone
    assert home.fallbacks[0][0] == "rvc" and home.fallbacks[0][2:] == ("no_worker", "rvc")


def test_a_dead_worker_that_was_still_listed_ends_the_wait_with_no_worker(tmp_path: Path) -> None:
    home = Household(tmp_path)
    home.broker.dead.add("desk")  # killed, its will not heard yet: the job reaches nobody
    result = home.speak("desk")
    assert (result.pcm, result.fallback_code) == (pcm(HERE, 2), "no_worker")  # type: ignore[attr-defined]
    assert "no worker answered within 1 s" in result.fallback_reason  # type: ignore[attr-defined]


def test_a_worker_lost_mid_job_ends_the_wait_with_worker_lost(tmp_path: Path) -> None:
    home = Household(tmp_path, bounds=Bounds(1.0, 60.0, 3))  # silence alone would wait a minute
    started = threading.Event()
    release = home.hold("desk", started)

    def lost() -> None:  # the desk's will heard while it speaks
        started.wait(10)
        home.hear("desk", "offline")

    threading.Thread(target=lost, daemon=True).start()
    began = time.monotonic()
    result = home.speak("desk")
    release.set()
    assert (result.pcm, result.fallback_code) == (pcm(HERE, 2), "worker_lost")  # type: ignore[attr-defined]
    assert time.monotonic() - began < 30  # ended by the will, not the minute's silence


def test_a_busy_worker_declines_and_another_takes_it(tmp_path: Path) -> None:
    home = Household(tmp_path, workers=("attic", "desk"), depth=1)
    gate = home.hold("attic")
    first = threading.Thread(target=home.speak, args=("auto", "One."))
    first.start()  # attic takes it and holds it: its queue is full
    while home.workers["attic"].taken == 0:
        time.sleep(0.01)
    home.broker._turn = itertools.cycle(["attic", "desk"])  # the next job meets the busy attic first
    result = home.speak("auto", "Two.")
    gate.set()
    first.join(10)
    assert (result.node, result.fallback_code, result.pcm) == ("desk", None, pcm(DESK, 1))  # type: ignore[attr-defined]
    assert home.broker.sent == [None, None, None]  # the first job, then the declined try and the next


def test_every_try_declined_runs_here_with_no_worker(tmp_path: Path) -> None:
    home = Household(tmp_path, depth=1)
    gate = home.hold("desk")
    first = threading.Thread(target=home.speak, args=("desk", "One."))
    first.start()
    while home.workers["desk"].taken == 0:
        time.sleep(0.01)
    result = home.speak("desk", "Two.")
    gate.set()
    first.join(10)
    assert (result.node, result.fallback_code) == (None, "no_worker")  # type: ignore[attr-defined]
    # the only worker declined: not asked again
    assert "every try was declined" in result.fallback_reason and home.broker.sent.count("desk") == 2  # type: ignore[attr-defined]


def test_a_worker_that_fails_is_worker_failed_and_here_speaks(tmp_path: Path) -> None:
    home = Household(tmp_path)
    home.worker_engines["desk"].fail_after = 0
    result = home.speak("desk")
    assert (result.pcm, result.fallback_code) == (pcm(HERE, 2), "worker_failed")  # type: ignore[attr-defined]
    assert "engine broke" in result.fallback_reason  # type: ignore[attr-defined]


def test_a_fallback_here_that_fails_too_goes_to_piper_with_the_remote_code(tmp_path: Path) -> None:
    home = Household(tmp_path)
    home.hear("desk", "offline")
    home.engines["rvc"].fail_after = 0
    result = home.speak("desk")
    assert (result.provider, result.pcm, result.fallback_code) == ("piper", pcm(HOME, 2), "no_worker")  # type: ignore[attr-defined]
    assert "rvc here failed too: engine broke" in result.fallback_reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["local", "home"])
def test_local_and_this_node_never_publish(tmp_path: Path, where: str) -> None:
    home = Household(tmp_path)
    assert home.speak(where).node is None and home.broker.sent == []  # type: ignore[attr-defined]


def test_a_job_whose_home_address_is_not_the_homes_own_fetches_nothing(tmp_path: Path) -> None:
    """The token goes only to the door a node's own state document names: a job that says the
    home's files are elsewhere is refused by the worker, and the home speaks itself."""
    home = Household(tmp_path)
    home.urls["home"] = "http://elsewhere:8080"
    result = home.speak("desk")
    assert (result.node, result.fallback_code) == (None, "worker_failed") and home.blobs.asked == []  # type: ignore[attr-defined]
    assert "untrusted_home" in result.fallback_reason  # type: ignore[attr-defined]


def test_streamed_sentences_go_out_as_the_worker_sends_them(tmp_path: Path) -> None:
    home = Household(tmp_path)
    result = home.speak("desk", "One. Two. Three.", stream=True)
    assert (result.node, result.chunks) == ("desk", 3)  # type: ignore[attr-defined]
    assert b"".join(pcm for _, pcm in home.streamed) == result.pcm == pcm(DESK, 3)  # type: ignore[attr-defined]
    assert [seq for seq, _ in home.streamed] == [0, 1, 2]


def test_a_worker_lost_after_streamed_audio_went_out_fails_the_request(tmp_path: Path) -> None:
    """The listener heard the worker's first sentence: no other voice takes over mid-way."""
    from agent.speak.pipeline import SpeakFailed

    home = Household(tmp_path)
    engine = home.worker_engines["desk"]
    original = engine.synthesize

    def then_gone(text, settings, ctx):  # type: ignore[no-untyped-def]
        if engine.calls:  # the second piece: the worker dies before it says a word
            home.hear("desk", "offline")
            threading.Event().wait(3)  # (the home has long stopped waiting)
        yield from original(text, settings, ctx)

    engine.synthesize = then_gone  # type: ignore[method-assign]
    with pytest.raises(SpeakFailed) as failed:
        home.speak("desk", "One. Two. Three.", stream=True)
    assert failed.value.code == "worker_lost" and [seq for seq, _ in home.streamed] == [0]
    assert home.engines["rvc"].calls == 0 and home.engines["piper"].calls == 0


def _run_job(home: Household, settings: dict[str, object], token: str = "household",
             url: str = "http://home:8080") -> list[dict[str, object]]:
    """A job straight from the broker, as anyone who may publish there could write it (the home's
    real model by hash): the desk worker's replies until its last word."""
    import json
    import queue

    from agent.nodes.work import BlobRef, SpeakWork
    model = home.ctx.voices_dirs[0] / "rvc-models" / "anna" / "anna.pth"
    sha = home.index.hash_of(model)
    assert sha is not None
    files = {"model": BlobRef(sha256=sha, size=model.stat().st_size, name=model.name)}
    replies: queue.Queue[dict[str, object]] = queue.Queue()
    job = SpeakWork(id=f"home-{uuid.uuid4().hex[:12]}", home="home", home_url=url, provider="rvc", text="One.",
                    settings=settings, files=files).sealed(token)
    worker = home.workers["desk"]
    worker.take("rvc", job.to_json(), lambda reply: replies.put(json.loads(reply)))
    said = [replies.get(timeout=30)]
    while said[-1]["kind"] not in ("done", "failed", "declined"):
        said.append(replies.get(timeout=30))
    return said


def test_a_job_whose_settings_name_a_file_outside_the_workers_home_is_refused(tmp_path: Path) -> None:
    """A job's paths (a Piper model as RVC's base voice) are a request's: on the worker, inside the
    worker's home, as voice.json's access.paths keeps any request's; nothing is fetched."""
    home = Household(tmp_path)
    secret = tmp_path / "elsewhere" / "private.onnx"
    said = _run_job(home, {"speakerId": "anna", "baseVoice": str(secret)})
    assert (said[-1]["kind"], said[-1].get("code")) == ("failed", "forbidden")
    assert home.blobs.asked == [] and home.worker_engines["desk"].calls == 0
    fine = _run_job(home, {"speakerId": "anna", "baseVoice": "en_US-joe-medium"})  # a voice's name: the worker's own
    assert fine[-1]["kind"] == "done" and home.worker_engines["desk"].calls == 1


def test_a_worker_whose_engine_hangs_while_it_says_alive_ends_the_wait_with_worker_lost(tmp_path: Path) -> None:
    """Its ticker goes on saying alive; no sentence within ``audio_s`` and the home speaks itself."""
    home = Household(tmp_path, bounds=Bounds(1.0, 60.0, 3, audio_s=0.5))  # silence alone would wait a minute
    release = home.hold("desk", timeout=60)
    try:
        result = home.speak("desk")
    finally:
        release.set()
    assert (result.pcm, result.fallback_code) == (pcm(HERE, 2), "worker_lost")  # type: ignore[attr-defined]
    assert "audio" in result.fallback_reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", ["", "not-the-household"])
def test_a_job_not_sealed_with_the_households_token_is_refused_before_any_fetch(tmp_path: Path, token: str) -> None:
    """Anyone who may publish on the broker can publish a node's state document naming a door of
    theirs, then a job of that "home": the worker would send the household's token there. A job
    is run only when sealed with the token (its log says why, the broker hears nothing)."""
    home = Household(tmp_path)
    home.urls["home"] = "http://attacker:8080"  # its forged state document
    from agent.nodes.work import SpeakWork
    job = SpeakWork(id="home-x1", home="home", home_url="http://attacker:8080", provider="rvc", text="One.",
                    settings={"speakerId": "anna"}).sealed(token)
    said: list[bytes] = []
    home.workers["desk"].take("rvc", job.to_json(), said.append)  # refused on the spot, in silence
    assert said == [] and home.blobs.asked == [] and home.workers["desk"].taken == 0


@pytest.mark.parametrize("token", ["", "not-the-household"])
def test_replies_not_sealed_with_the_households_token_are_not_spoken(tmp_path: Path, token: str) -> None:
    """Anyone who reads the work topic sees a job's id (its correlation data) and could answer it
    with audio of their own: the home takes only replies sealed with the token."""
    import json

    from agent.nodes.work import SpeakWork, WorkReply
    home = Household(tmp_path)
    home.broker.dead.add("desk")  # the real worker never hears it: only the forger answers
    forged = (pcm(7, 1), 16000)

    def forger(provider: str, node: str | None, payload: bytes, correlation: bytes) -> None:
        job = SpeakWork.model_validate(json.loads(payload))
        for reply in (WorkReply(kind="accepted", node="desk", id=job.id), WorkReply.chunk("desk", job.id, 0, *forged),
                      WorkReply(kind="done", node="desk", id=job.id, seq=1)):
            home.remote.replied(correlation, reply.sealed(token).to_json())

    home.broker.send = forger  # type: ignore[method-assign]
    result = home.speak("desk", "One.")
    said = (result.pcm, result.node, result.fallback_code)  # type: ignore[attr-defined]
    assert said == (pcm(HERE, 1), None, "no_worker")


def test_a_job_delivered_twice_runs_once(tmp_path: Path) -> None:
    """QoS 1 may deliver a job again, and anyone who reads the work topic can publish a sealed job
    again: the worker runs each job id once (a second run's sentences would arrive out of order)."""
    import json
    import queue

    from agent.nodes.work import BlobRef, SpeakWork
    home = Household(tmp_path)
    model = home.ctx.voices_dirs[0] / "rvc-models" / "anna" / "anna.pth"
    sha = home.index.hash_of(model)
    assert sha is not None
    job = SpeakWork(id="home-x2", home="home", home_url="http://home:8080", provider="rvc", text="One.",
                    settings={"speakerId": "anna"},
                    files={"model": BlobRef(sha256=sha, size=model.stat().st_size, name=model.name)}).sealed("household")
    first: queue.Queue[dict[str, object]] = queue.Queue()
    again: list[bytes] = []
    worker = home.workers["desk"]
    worker.take("rvc", job.to_json(), lambda reply: first.put(json.loads(reply)))
    worker.take("rvc", job.to_json(), again.append)
    while first.get(timeout=30)["kind"] != "done":
        pass
    worker.take("rvc", job.to_json(), again.append)
    assert again == [] and worker.taken == 1 and home.worker_engines["desk"].calls == 1


def test_a_sealed_job_whose_response_topic_is_not_its_homes_is_not_run(tmp_path: Path) -> None:
    """The seal covers the job, not the message's response topic: anyone who reads a sealed job off
    the work topic could publish it again asking for the audio on a topic of theirs."""
    from agent.nodes.work import SpeakWork
    home = Household(tmp_path)
    job = SpeakWork(id="home-x3", home="home", home_url="http://home:8080", provider="rvc", text="One.",
                    settings={"speakerId": "anna"}).sealed("household")
    said: list[bytes] = []
    home.workers["desk"].take("rvc", job.to_json(), said.append, answers_home=lambda node: node == "elsewhere")
    assert said == [] and home.workers["desk"].taken == 0


def test_a_sovits_transcript_the_home_does_not_lend_keeps_the_job_home_with_no_worker(tmp_path: Path) -> None:
    """The prompt text is part of the voice: a worker never speaks from the audio alone when the
    home has words for it (a .lab is not among the files lent)."""
    from agent.nodes.placement import Place
    from agent.speak.remote import RemoteError
    from providers.sovits.config import SovitsSettings

    folder = tmp_path / "voices" / "sovits-reference" / "anna"
    folder.mkdir(parents=True)
    (folder / "anna.wav").write_bytes(b"RIFF")
    (folder / "anna.lab").write_text("Words.", encoding="utf-8")
    broker: list[str | None] = []
    remote = RemoteSpeech("home", "http://home:8080", NodeRegistry(), BlobIndex(lambda: [tmp_path / "voices"]),
                          token=lambda: "household")
    remote.use(type("Link", (), {"ready": lambda self: True,
                                 "send": lambda self, provider, node, payload, correlation: broker.append(node)})())
    speech = remote.run("sovits", Place("desk"), "Hi.", SovitsSettings.model_validate({"speakerId": "anna"}),
                        loose_context(tmp_path, (tmp_path / "voices",)), lambda node: None)
    with pytest.raises(RemoteError) as caught:
        next(iter(speech))
    assert caught.value.code == "no_worker" and "anna.lab" in str(caught.value) and broker == []

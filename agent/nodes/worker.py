"""This node making other nodes' speech (``VOICE_AGENT_WORKER=true``): a job from a work topic is
taken or declined at once on the network thread (``take``), and run on a small pool of its own,
so a burst waits here only up to ``depth`` jobs and the rest is declined for another worker.

A job's files are fetched by hash from its home node (the household's token; agent/blobs/cache.py:
a half-received or corrupted file never becomes one) and laid out under ``out/work/`` for the
engine, one folder per set of files, so a model stays loaded for the next job that uses it.
While it runs, the worker says ``alive`` every ``alive_s``: the home stops waiting when it stops.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from pydantic import ValidationError

from agent.access import AccessConfig, check_paths
from agent.blobs.cache import BlobCache
from agent.errors import ServiceError
from agent.layout import Layout
from agent.nodes.work import Answer, SpeakWork, WorkError, WorkReply, read_job
from agent.requests import describe_validation_error
from agent.speak.engines import ProviderPool
from agent.work import BoundedExecutor
from providers import registry
from providers.base import ProviderContext, ProviderError

log = logging.getLogger(__name__)

Reply = Callable[[bytes], None]  # publishes one reply on the job's response topic
TAKEN_IDS = 4096  # the last jobs taken, by id: one delivered again (QoS 1, or replayed off the broker) runs once


class SpeakWorker:
    def __init__(self, node: str, layout: Layout, engines: ProviderPool, blobs: BlobCache, token: Callable[[], str],
                 homes: Callable[[str], str | None], depth: int = 2, alive_s: float = 1.0,
                 own: dict[str, dict[str, object]] | None = None) -> None:
        """``homes``: a node's HTTP door as its own state document says it (the registry), None
        when unknown: the household's token goes to no other address than that. ``own``:
        provider -> the settings this node gives over every job's (``RemoteSpec.own``: its own
        GPT-SoVITS server)."""
        self.node = node
        self._own = own or {}
        self._homes = homes
        self._layout = layout
        self._engines = engines
        self._blobs = blobs
        self._token = token
        self._alive_s = alive_s
        self._pool = BoundedExecutor("remote speak", workers=1, depth=depth)
        self.taken = 0  # jobs accepted since the start (the bench and the tests count them)
        self._taken_ids: OrderedDict[str, None] = OrderedDict()
        self._taken_lock = threading.Lock()

    def providers(self) -> list[str]:
        """The providers whose speech this node may make for others."""
        unserved = self.unserved()
        return [spec.name for spec in registry.SPECS if spec.remote is not None and spec.name not in unserved]

    def unserved(self) -> set[str]:
        """The providers that could move but lack this node's own settings (``RemoteSpec.own``: no
        GPT-SoVITS server of its own): its node document leaves them out, so no home sends them here."""
        return {spec.name for spec in registry.SPECS if spec.remote is not None
                and not all(key in self._own.get(spec.name, {}) for key in spec.remote.own)}

    def take(self, provider: str, payload: bytes, reply: Reply,
             answers_home: Callable[[str], bool] = lambda home: True) -> None:
        """A job from the broker (the network thread: nothing here blocks). ``answers_home(node)``:
        whether ``reply`` goes to that node's own response topic (the seal does not cover a
        message's properties: a sealed job published again with another response topic would
        have the audio sent there)."""
        try:
            job = read_job(payload)
        except WorkError as exc:
            log.warning("ignored a speak job for %s: %s", provider, exc)
            return
        answer = Answer(WorkReply, self.node, job.id, reply, self._token())
        if not job.sealed_by(self._token()):  # no answer: a home that cannot seal could not trust it either
            log.warning("ignored speak job %s of node %s: not sealed with this household's token (give every node "
                        "the same VOICE_AGENT_HTTP_TOKEN)", job.id, job.home)
            return
        if not answers_home(job.home):
            log.warning("ignored speak job %s of node %s: its response topic is not that node's", job.id, job.home)
            return
        with self._taken_lock:
            again = job.id in self._taken_ids
        if again:  # no answer: the first delivery's answers are the job's
            log.info("ignored speak job %s of node %s: taken already", job.id, job.home)
            return
        if job.provider != provider or provider not in self.providers():
            answer.say("declined", code="provider_unavailable", message=f"{self.node} makes no {job.provider} speech for others")
            return
        with answer.lock:  # "accepted" goes out before any word of the job's own thread
            try:
                self._pool.submit(self._run, job, answer)
            except ServiceError as exc:
                answer.say("declined", code=exc.code, message=str(exc))
                return
            self.taken += 1
            with self._taken_lock:
                self._taken_ids[job.id] = None
                while len(self._taken_ids) > TAKEN_IDS:
                    self._taken_ids.popitem(last=False)
            log.info("speak job %s of node %s taken (%s, %d characters)", job.id, job.home, job.provider, len(job.text))
            answer.say("accepted")

    def stop(self) -> None:
        self._pool.shutdown(wait=False)

    def _run(self, job: SpeakWork, answer: Answer[WorkReply]) -> None:
        done = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(answer, done), name="work-alive", daemon=True)
        ticker.start()
        try:
            seq = self._speak(job, answer)
        except ServiceError as exc:
            answer.say("failed", code=exc.code, message=str(exc))
        except ProviderError as exc:
            answer.say("failed", code=exc.code, message=str(exc))
        except Exception as exc:  # an engine bug must not take the worker down
            log.exception("speak job %s of %s failed", job.id, job.home)
            answer.say("failed", code="provider_error", message=f"{type(exc).__name__}: {exc}")
        else:
            answer.say("done", seq=seq)
        finally:
            done.set()

    def _tick(self, answer: Answer[WorkReply], done: threading.Event) -> None:
        while not done.wait(self._alive_s):
            answer.say("alive")

    def _speak(self, job: SpeakWork, answer: Answer[WorkReply]) -> int:
        spec = registry.spec(job.provider)
        assert spec.remote is not None
        try:
            settings = spec.settings.model_validate(job.settings)
        except ValidationError as exc:
            raise ServiceError("invalid_payload", f"the job's {job.provider} settings: {describe_validation_error(exc)}") from exc
        # a job is a request from the broker: its paths (a base voice) stay inside this node's home
        check_paths(AccessConfig(), self._layout.home, self._layout.work_dir, spec.settings, job.settings, "settings")
        if self._homes(job.home) != job.home_url:
            raise ServiceError("untrusted_home", f"the job says node {job.home}'s files are at {job.home_url}, and its "
                               "state document does not: nothing fetched (the token goes only to a node's own door)")
        files = {role: self._blobs.get(ref.sha256, job.home_url, self._token(), size=ref.size)
                 for role, ref in job.files.items()}
        if spec.remote.required[0] not in files:
            raise ServiceError("invalid_payload", f"the job names no {spec.remote.required[0]}")
        key = hashlib.sha256("".join(sorted(ref.sha256 for ref in job.files.values())).encode()).hexdigest()[:16]
        folder = self._layout.work_dir / job.provider / key
        settings = spec.remote.place(settings, files, folder).updated(**self._own.get(job.provider, {}))
        ctx = ProviderContext(profile=job.home, profile_dir=folder, voices_dirs=(folder, self._layout.household_voices),
                              data_dir=self._layout.models_dir, run_dir=self._layout.run_dir, home=self._layout.home,
                              samples_dir=folder / "samples")
        seq = 0
        for chunk in self._engines.get(job.provider).synthesize(job.text, settings, ctx):
            answer.send(WorkReply.chunk(self.node, job.id, seq, chunk.pcm, chunk.sample_rate))
            seq += 1
        return seq

"""Record requests and streamed utterances: score them in the analysis process, keep the good
ones, tell everyone what happened (events, readiness in the profile's state)."""

from __future__ import annotations

import logging
import queue
import sqlite3
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.record import analysis
from agent.record.config import KeepConfig
from agent.record.decode import ANALYSIS_RATE, AudioDecodeError
from agent.record.export import export, take, target_dir
from agent.record.keep import samples_to_prune
from agent.record.readiness import all_providers
from agent.record.requests import RecordRequest
from agent.record.speaker import similarity
from agent.record.store import CorruptDatabase, SampleStore, open_store
from agent.record.transcript import mismatch
from agent.record.vad import Utterance, VadOptions
from agent.record.words import error_words, say
from agent.work import ByteBudget, Hold
from providers import registry
from providers.common.process import release_free_memory

log = logging.getLogger(__name__)


@dataclass
class RecordJob:
    profile: str
    id: str
    audio: bytes | None = None  # a recording to cut and score
    utterances: list[Utterance] | None = None  # already cut from a stream
    transcript: str | None = None
    source: str | None = None
    future: Future[dict[str, Any]] | None = None
    enroll: bool = False  # the audio is the owner's reference voice, not a sample
    held: Hold | None = None  # its bytes in the record budget, from the queue until it is done

    @property
    def size(self) -> int:
        """The bytes it holds while it waits and is scored."""
        if self.audio is not None:
            return len(self.audio)
        return sum(u.samples.nbytes for u in self.utterances or [])


class RecordService:
    def __init__(
        self, layout: Layout, configs: ConfigStore, events: EventBus, state: StateBoard, queue_depth: int,
        analyser: analysis.Analyser | None = None, queue_bytes: int | None = None,
        analysis_idle_seconds: float = 120.0,
    ) -> None:
        """``queue_depth`` recordings, of ``queue_bytes`` in all (unbounded when None), may wait or be
        scored at a time; more are ``busy``. The analysis process exits after
        ``analysis_idle_seconds`` without recordings (0: it stays)."""
        self._layout = layout
        self._configs = configs
        self._events = events
        self._state = state
        self._queue: queue.Queue[RecordJob | None] = queue.Queue(maxsize=queue_depth)
        self._bytes = ByteBudget(queue_bytes if queue_bytes is not None else sys.maxsize)
        self._stores: dict[str, SampleStore] = {}
        self._orphaned: set[str] = set()  # profiles with audio to score again (found without its row)
        self._problems: dict[str, str] = {}  # profile -> why its record path is down or rebuilding
        self._analyser = analyser or analysis.AnalysisWorker(idle_seconds=analysis_idle_seconds)
        self._lock = threading.Lock()  # the small state above; never held across disk work
        self._opening: dict[str, threading.Lock] = {}  # profile -> held while its store opens
        self._worker = threading.Thread(target=self._work, name="record", daemon=True)
        self._worker.start()

    # -- intake (MQTT thread: never blocks) ----------------------------------------------
    def reserve(self, profile: str, size: int, enroll: bool = False) -> Hold:
        """Room for a recording of ``size`` bytes (0 for a body without a length: ``grow`` it as it
        arrives) that is yet to be read (HTTP): the refusals that need no audio first, then its
        bytes held in the record budget, or ``busy``. ``submit``/``enroll`` with the hold take the
        bytes over; whoever reads the body releases it if it never becomes a job."""
        if not enroll:
            self._check_enabled(profile)
        hold = self._bytes.hold(size)
        if hold is None:
            raise self._busy()
        return hold

    def submit(self, profile: str, request: RecordRequest, hold: Hold | None = None) -> Future[dict[str, Any]]:
        self._check_enabled(profile)
        job = RecordJob(
            profile, request.id or uuid.uuid4().hex[:12], audio=request.wav(),
            transcript=request.transcript, source=request.source or "mqtt", future=Future(),
        )
        self._enqueue(job, hold)
        assert job.future is not None
        return job.future

    def enroll(self, profile: str, request: RecordRequest, hold: Hold | None = None) -> Future[dict[str, Any]]:
        job = RecordJob(profile, request.id or uuid.uuid4().hex[:12], audio=request.wav(), future=Future(), enroll=True)
        self._enqueue(job, hold)
        assert job.future is not None
        return job.future

    def _check_enabled(self, profile: str) -> None:
        if not self._configs.get(profile).record.enabled:
            raise ServiceError("record_disabled", f"recording is disabled for profile {profile!r} (record.enabled)",
                               {"say": error_words("record_disabled")})

    def _busy(self) -> ServiceError:
        return ServiceError("busy", f"{self._bytes.held} bytes of recordings are waiting to be scored "
                                    f"(at most {self._bytes.limit}); try again later", {"say": error_words("busy")})

    def submit_utterances(self, profile: str, utterances: list[Utterance], source: str, transcript: str | None = None) -> bool:
        """From a stream: results go out as events only. False when the queue is full."""
        try:
            job = RecordJob(profile, uuid.uuid4().hex[:12], utterances=utterances, source=source, transcript=transcript)
            self._enqueue(job)
            return True
        except ServiceError:
            return False

    def _enqueue(self, job: RecordJob, hold: Hold | None = None) -> None:
        """Queue ``job`` with its bytes: those of ``hold`` (taken while its body was read), else
        its own size taken now."""
        job.held = (hold.pass_on() if hold is not None else None) or self._bytes.hold(job.size)
        if job.held is None:
            raise self._busy()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            job.held.release()
            raise ServiceError("busy", "too many recordings are waiting to be scored; try again later",
                               {"say": error_words("busy")}) from None

    def vad_options(self, profile: str) -> VadOptions:
        record = self._configs.get(profile).record
        return VadOptions(
            frame_ms=record.vad.frame_ms, aggressiveness=record.vad.aggressiveness,
            hangover_ms=record.vad.hangover_ms, min_seconds=record.min_seconds, max_seconds=record.max_seconds,
        )

    def drops_own_speech(self, profile: str) -> bool:
        return self._configs.get(profile).record.drop_own_speech

    def store(self, profile: str) -> SampleStore:
        """The profile's store, opened on first use. A damaged database is set aside and rebuilt from
        the WAVs; a store that cannot be opened at all is ``record_unavailable`` for this profile
        alone (tried again on its next use). Either way the reason is in the profile's state
        (``record_problem``) and in ``problems()``. Opening (an integrity check of the whole file,
        the WAV folder reconciled, perhaps a rebuild) holds up only who needs this profile's store:
        ``problems()`` (health) and the other profiles answer meanwhile."""
        with self._lock:
            store = self._stores.get(profile)
            if store is not None:
                return store
            opening = self._opening.setdefault(profile, threading.Lock())
        with opening:
            with self._lock:
                store = self._stores.get(profile)  # opened while this one waited its turn
                if store is not None:
                    return store
                had = profile in self._problems
            return self._open(profile, had)

    def _open(self, profile: str, had: bool) -> SampleStore:
        """Open the profile's store (its ``opening`` lock held, not the service's) and say how it went."""
        db = self._layout.samples_db(profile)
        try:
            store, aside = open_store(self._layout.samples_dir(profile), db)
        except (OSError, sqlite3.Error, CorruptDatabase) as exc:
            why = f"record path down: cannot open {db.name}: {exc}"
            with self._lock:
                again = self._problems.get(profile) == why
                self._problems[profile] = why
            if not again:  # once, not at every request while it lasts
                log.error("profile %s: %s (%s)", profile, why, db)
            self._state.update(profile, record_problem=why)
            raise ServiceError("record_unavailable", why) from None
        orphans = len(store.orphans())
        problem = None if aside is None else (
            f"{db.name} was damaged ({aside.reason}) and is kept as {aside.kept_as.name}; "
            f"{orphans} sample(s) are scored again from their WAVs "
            "(their transcripts and the enrolled voice were in it)")
        with self._lock:
            self._stores[profile] = store
            if orphans or aside is not None:
                self._orphaned.add(profile)
            if problem is not None:
                self._problems[profile] = problem
            else:
                self._problems.pop(profile, None)
        if problem is not None or had:
            self._state.update(profile, record_problem=problem)
        return store

    def open(self, profile: str) -> None:
        """At start-up: open the profile's store (making its folders) and publish its readiness. A
        store that cannot be opened takes down this profile's record path, not the agent."""
        try:
            self.publish_readiness(profile)
        except ServiceError:
            pass  # logged, and in its state and problems(), by ``store``

    def problems(self) -> list[str]:
        """Profiles whose record path is down or rebuilding its database, and why."""
        with self._lock:
            return [f"profile {profile!r}: {why}" for profile, why in sorted(self._problems.items())]

    def _rebuilt(self, profile: str) -> None:
        """Every orphan of the profile is scored: a database rebuilt from its WAVs is whole again."""
        with self._lock:
            self._orphaned.discard(profile)
            if profile not in self._stores or self._problems.pop(profile, None) is None:
                return
        log.info("the samples database of %s is rebuilt from its WAVs", profile)
        self._state.update(profile, record_problem=None)

    def publish_readiness(self, profile: str) -> dict[str, Any]:
        config = self._configs.get(profile)
        samples = self.store(profile).list()
        readiness = all_providers(samples, config.record.threshold)
        minutes = round(sum(s.duration for s in samples) / 60, 2)
        self._state.update(profile, readiness=readiness, samples=len(samples), sample_minutes=minutes)
        return readiness

    def stop(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.held is not None:
                job.held.release()
            if job is not None and job.future is not None:
                job.future.set_exception(ServiceError("shutting_down", "the agent is stopping"))
        self._queue.put(None)
        self._worker.join(timeout=30)
        self._analyser.close()
        with self._lock:
            stores = list(self._stores.values())
        for store in stores:
            store.close()

    # -- the worker ----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._reimport_one()  # only when nothing else waits: live recordings come first
                continue
            if job is None:
                return
            self._run(job)
            release_free_memory()  # a flood of 32 MiB recordings must not stay the agent's RSS

    def _run(self, job: RecordJob) -> None:
        try:
            try:
                result = self._process(job)
            except analysis.AnalysisFailed as exc:
                raise ServiceError(exc.code, str(exc)) from exc
        except BaseException as exc:
            if not isinstance(exc, ServiceError):
                log.exception("recording %s failed", job.id)
            self._release(job)  # before the answer: who hears it may send the next one
            if job.future is not None:
                job.future.set_exception(exc)
            return
        warmup = self._analyser.take_warmup()
        if warmup is not None:  # the analysis process (re)started for this one: the answer says what it cost
            result["warmup_seconds"] = warmup
        self._release(job)
        if job.future is not None:
            job.future.set_result(result)

    @staticmethod
    def _release(job: RecordJob) -> None:
        if job.held is not None:
            job.held.release()

    def _reimport_one(self) -> None:
        """Score one orphan again: kept, its audio lives on as new samples; refused, it moves to
        ``orphans/refused/``. Either way no audio is lost, and an event says what became of it."""
        with self._lock:
            profile = next(iter(sorted(self._orphaned)), None)
        if profile is None:
            return
        try:
            store = self.store(profile)
        except ServiceError:
            with self._lock:
                self._orphaned.discard(profile)
            return
        orphans = store.orphans()
        if not orphans:
            self._rebuilt(profile)
            return
        path = orphans[0]
        job = RecordJob(profile, uuid.uuid4().hex[:12], audio=path.read_bytes(), source="orphan")
        try:
            result = self._process(job)
            kept, refused = [k["id"] for k in result["kept"]], [r for item in result["rejected"] for r in item["reasons"]]
        except analysis.AnalysisFailed as exc:  # cannot score now (packages missing): leave them be
            log.warning("cannot score the orphaned samples of %s again: %s", profile, exc)
            with self._lock:
                self._orphaned.discard(profile)
            return
        except ServiceError as exc:
            kept, refused = [], [str(exc)]
        if kept:
            path.unlink(missing_ok=True)
        else:
            (path.parent / "refused").mkdir(exist_ok=True)
            path.replace(path.parent / "refused" / path.name)
        if not store.orphans():
            self._rebuilt(profile)  # before the event: who hears of the last one finds the profile whole
        self._events.emit(profile, "sample.reimported", {"file": path.name, "kept": kept, "refused": refused})

    def _enroll(self, job: RecordJob) -> dict[str, Any]:
        try:
            embedding = self._analyser.embed_wav(job.audio or b"", self.vad_options(job.profile))
        except (AudioDecodeError, ValueError) as exc:
            raise ServiceError("invalid_audio", str(exc)) from exc
        store = self.store(job.profile)
        store.set_enrolled(embedding)
        self._events.emit(job.profile, "speaker.enrolled", {"request_id": job.id})
        centroid = store.centroid()
        match = round(similarity(embedding, centroid), 3) if centroid is not None else None
        return {"id": job.id, "enrolled": True, "similarity_to_kept_samples": match}

    def _process(self, job: RecordJob) -> dict[str, Any]:
        if job.enroll:
            return self._enroll(job)
        config = self._configs.get(job.profile).record
        store = self.store(job.profile)
        voice = store.speaker()
        options = analysis.AnalysisOptions(
            vad=self.vad_options(job.profile), dnsmos=config.dnsmos,
            reference=voice[1] if voice else None, min_similarity=config.speaker.min_similarity,
            transcript=job.transcript,
        )
        if job.audio is not None:
            try:
                result = self._analyser.score_wav(job.audio, options)
            except AudioDecodeError as exc:
                self._events.emit(job.profile, "sample.rejected", {"request_id": job.id, "reasons": [str(exc)]})
                raise ServiceError("invalid_audio", str(exc), {"say": error_words("invalid_audio")}) from exc
            scored, seconds, dropped = result.utterances, result.seconds, result.dropped
        else:
            scored = self._analyser.score_utterances(job.utterances or [], options)
            seconds, dropped = sum(u.seconds for u in job.utterances or []), []
        if not scored:
            why = f"no usable speech in {seconds:.1f} s of audio" + (
                f" ({len(dropped)} segment(s) {dropped[0][1]})" if dropped else ""
            )
            self._events.emit(job.profile, "sample.rejected", {"request_id": job.id, "reasons": [why]})
            raise ServiceError("no_speech", why, {"say": error_words("no_speech")})
        transcript = job.transcript if len(scored) == 1 else None
        kept, rejected = [], []
        for item in scored:
            reasons, low = list(item.reasons), item.score < config.threshold
            if low:
                reasons.append(f"score {item.score:.0f} below the threshold {config.threshold:g}")
            measured = asdict(item.measurements)
            summary = {
                "request_id": job.id, "score": item.score, "components": item.components,
                "duration": round(len(item.samples) / ANALYSIS_RATE, 3), "start": round(item.start, 3),
                "speaker_similarity": item.measurements.speaker_similarity,
            }
            if reasons:
                rejected.append({**summary, "reasons": reasons, "say": say(item.codes, item.components, measured, low)})
                self._events.emit(job.profile, "sample.rejected", rejected[-1])
                continue
            checked = self._transcript_check(transcript, item.heard)
            sample = store.add(
                item.samples, ANALYSIS_RATE, item.score, item.components, measured,
                transcript, job.source, item.measurements.speaker_similarity, checked.get("transcript_mismatch"),
            )
            store.add_to_centroid(item.embedding)
            codes = ["transcript_mismatch"] if checked.get("transcript_mismatch") else []
            kept.append({**summary, "id": sample.id, **checked, "say": say(codes, item.components, measured)})
            self._events.emit(job.profile, "sample.captured", kept[-1])
        if kept:
            self._prune(job.profile, store, config.keep)
            self._refresh_followers(job.profile, store)
            self.publish_readiness(job.profile)
        if job.transcript and len(scored) > 1:
            log.info("recording %s held %d utterances; its transcript was not stored", job.id, len(scored))
        return {"id": job.id, "seconds": round(seconds, 3), "utterances": len(scored), "kept": kept, "rejected": rejected}

    @staticmethod
    def _transcript_check(transcript: str | None, heard: str | None) -> dict[str, Any]:
        """What a kept sample's answer says of its transcript: the words heard and, when they
        plainly differ, why it stays out of the datasets that learn from transcripts."""
        if transcript is None:
            return {}
        if heard is None:
            return {"transcript": transcript, "transcript_checked": False}
        return {"transcript": transcript, "transcript_checked": True, "heard": heard,
                "transcript_mismatch": mismatch(transcript, heard)}

    def _prune(self, profile: str, store: SampleStore, policy: KeepConfig) -> None:
        reasons = samples_to_prune(store.list(), policy, time.time())
        if not reasons:
            return
        gone = store.delete(sorted(reasons))
        log.info("pruned %d sample(s) of %s (record.keep)", len(gone), profile)
        self._events.emit(profile, "samples.pruned", {"samples": [{"id": i, "reason": reasons[i]} for i in gone]})

    def _refresh_followers(self, profile: str, store: SampleStore) -> None:
        """Datasets that follow the samples (GPT-SoVITS' reference) are re-exported for the
        speaker the profile speaks with, when what they would hold changed."""
        config = self._configs.get(profile)
        for spec in registry.SPECS:
            dataset = spec.dataset
            if dataset is None or dataset.refresh_event is None:
                continue
            chosen = take(spec.name, store.list())
            speaker = config.tts.settings_for(spec.name).voice_name
            directory = target_dir(self._layout, profile, spec.name, speaker)
            if not chosen or all((directory / s.file).exists() for s in chosen):
                continue
            export(store, directory, spec.name, chosen)
            best = chosen[0]
            self._events.emit(profile, dataset.refresh_event, {"sample": best.id, "score": best.score, "speaker": speaker})

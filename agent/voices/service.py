"""Downloads of catalog voices for the household: one download per voice at a time (a second
request for a voice that is being fetched joins the first), on a few worker threads, with events
on the asking profiles' streams (``voices.download.started/progress/finished/failed``).

A speak request or a profile's voice.json that names a catalog voice that is not installed asks
``ensure``/``want``: on demand (a setting) the download starts; the request waits a bounded time."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from agent import __version__
from agent.errors import ServiceError
from agent.events import EventBus
from agent.settings import AgentSettings
from agent.voices.catalog import Catalog, Entry, closest
from agent.voices.download import Fetch, failed, fetch, room, urlopen
from agent.voices.requests import CatalogRequest, DownloadRequest
from agent.voices.resolve import voice_parts
from providers import registry
from providers.base import ProviderError, ProviderUnavailableError

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.25  # seconds between progress events of one download (at most ~4 a second)
WORKERS = 2
BEAT_EVERY = 10.0  # seconds between heartbeats of a speak request waiting for its voice's download
CATALOG_LIMIT = 64 << 20  # bytes a fetched catalog may take (Piper's is about 1 MB)
Installed = Callable[[str, str, str], bool]  # (profile, provider, name) -> the profile can use it now


class _Job:
    """One voice being fetched, and the profiles that asked for it (each hears its events)."""

    def __init__(self, entry: Entry, profile: str) -> None:
        self.entry = entry
        self.profiles = [profile]
        self.future: Future[dict[str, Any]] = Future()
        self.lock = threading.Lock()


class VoiceDownloads:
    """Fetches catalog voices into the household's voices folder (``out/voices``)."""

    def __init__(self, settings: AgentSettings, catalog: Catalog, voices_dir: Path, events: EventBus,
                 installed: Installed, workers: int = WORKERS) -> None:
        self._settings = settings
        self._catalog = catalog
        self._voices_dir = voices_dir
        self._events = events
        self._installed = installed
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voice-download")
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._lock = threading.Lock()

    @property
    def staging(self) -> Path:
        return self._voices_dir / ".downloads"

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- which voice ---------------------------------------------------------------------------
    def entry(self, name: str, provider: str | None = None) -> Entry:
        """The catalog entry for a name (or alias), of one provider or the first that has it; else
        ``voice_not_found`` with the closest names."""
        providers = [provider] if provider else list(registry.NAMES)
        for candidate in providers:
            found = self._catalog.find(candidate, name)
            if found is not None:
                return found
        known = [n for (p, n) in self._catalog.entries() if p in providers]
        near = closest(name, known)
        hint = f"; did you mean {' or '.join(near)}?" if near else "; voice-agent voices --catalog lists them"
        raise ServiceError("voice_not_found", f"{name!r} is in no {provider or ''} voice catalog{hint}".replace("  ", " "),
                           {"closest": near})

    # -- the command ---------------------------------------------------------------------------
    def download(self, profile: str, request: DownloadRequest) -> Future[dict[str, Any]]:
        """Every named voice, fetched (or already there): the answer once all are installed."""
        entries = [self.entry(name, request.provider) for name in request.names]  # refused before anything starts
        futures = [self.start(profile, entry) for entry in entries]
        answer: Future[dict[str, Any]] = Future()
        remaining = [len(futures)]
        lock = threading.Lock()

        def one_done(_: Future[dict[str, Any]]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                answer.set_exception(errors[0] if isinstance(errors[0], ServiceError)
                                     else ServiceError("voice_download_failed", str(errors[0])))
            else:
                answer.set_result({"id": request.id, "installed": [f.result() for f in futures]})

        for future in futures:
            future.add_done_callback(one_done)
        return answer

    def start(self, profile: str, entry: Entry) -> Future[dict[str, Any]]:
        """The voice's download, started now or joined; done at once when it is installed."""
        voice = entry.voice
        key = (voice.provider, voice.name)
        if self._installed(profile, voice.provider, voice.name):
            done: Future[dict[str, Any]] = Future()
            done.set_result({"provider": voice.provider, "name": voice.name, "files": []})
            return done
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                with job.lock:
                    if profile not in job.profiles:
                        job.profiles.append(profile)
                return job.future
            job = self._jobs[key] = _Job(entry, profile)
        self._pool.submit(self._run, job)
        return job.future

    def busy(self, provider: str, name: str) -> bool:
        with self._lock:
            return (provider, name) in self._jobs

    # -- on demand -----------------------------------------------------------------------------
    def want(self, profile: str, provider: str, voice: str) -> list[Future[dict[str, Any]]]:
        """The catalog voices a profile names (voice.json, a request; each part of a Kokoro blend)
        that are not installed: their downloads when on-demand is on; none when there is nothing to
        fetch (installed, or no catalog voice: the engine says what is wrong); ``downloads_off``
        otherwise. Names come canonical (the config store and ``resolve`` make aliases names)."""
        futures = []
        for name in voice_parts(provider, voice):
            entry = self._catalog.find(provider, name)
            if entry is None or self._installed(profile, provider, entry.voice.name):
                continue
            if not self._settings.voice_download_on_demand:
                raise ServiceError("downloads_off", f"{provider} voice {name!r} is not installed and on-demand "
                                   f"downloads are off: run `voice-agent voices download {name}` (or set "
                                   "VOICE_AGENT_VOICE_DOWNLOAD_ON_DEMAND=true)")
            futures.append(self.start(profile, entry))
        return futures

    def ensure(self, profile: str, provider: str, voice: str, beat: Callable[[], None] | None = None) -> None:
        """For a speak request: returns once the voice (every part of a blend) can be used (or is no
        catalog voice), waiting at most ``voice_download_wait`` in all for its downloads; else
        ``voice_downloading``, ``downloads_off`` or a download's own error. ``beat`` is called every
        ``BEAT_EVERY`` seconds of the wait: the speak worker's heartbeat, so a wait of up to an hour
        (the setting's maximum) is not taken for a hung engine by the watchdog (core's STALL_LIMIT)."""
        deadline = time.monotonic() + self._settings.voice_download_wait
        for future in self.want(profile, provider, voice):
            while True:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise FutureTimeout
                    future.result(timeout=min(left, BEAT_EVERY))
                    break
                except FutureTimeout:
                    if beat is not None:
                        beat()
                    if left <= BEAT_EVERY:
                        raise ServiceError("voice_downloading", f"{provider} voice {voice!r} is being downloaded; "
                                           "it speaks once the download finishes") from None

    # -- the work ------------------------------------------------------------------------------
    def _emit(self, job: _Job, name: str, data: dict[str, Any]) -> None:
        with job.lock:
            profiles = list(job.profiles)
        for profile in profiles:
            self._events.emit(profile, f"voices.download.{name}", {"name": job.entry.voice.name,
                                                                    "provider": job.entry.voice.provider, **data})

    def _run(self, job: _Job) -> None:
        voice = job.entry.voice
        began = time.monotonic()
        total = sum(f.size or 0 for f in voice.files)
        try:
            self._emit(job, "started", {"total": total})
            result = self._fetch_and_install(job, total)
        except BaseException as exc:
            error = exc if isinstance(exc, ServiceError) else ServiceError(
                "voice_download_failed", f"installing {voice.provider} voice {voice.name} failed: {exc}")
            with self._lock:
                self._jobs.pop((voice.provider, voice.name), None)
            self._emit(job, "failed", {"code": error.code, "message": str(error)})
            job.future.set_exception(error)
            return
        with self._lock:
            self._jobs.pop((voice.provider, voice.name), None)
        self._emit(job, "finished", {"seconds": round(time.monotonic() - began, 3)})
        job.future.set_result(result)

    def _fetch_and_install(self, job: _Job, total: int) -> dict[str, Any]:
        voice = job.entry.voice
        staging = self.staging / voice.provider
        fetched: dict[str, Path] = {}
        before = 0
        last = [0.0]

        def progress(done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                self._emit(job, "progress", {"done": before + done, "total": total})

        try:
            for file in voice.files:
                free = room(self._voices_dir, self._settings.voice_download_max_mb << 20)
                how = Fetch(timeout=self._settings.voice_download_timeout, room=free)
                fetched[file.path] = fetch(job.entry.url(file.path), file, staging, how=how, progress=progress)
                before += fetched[file.path].stat().st_size
            self._emit(job, "progress", {"done": before, "total": total or before})  # no size published: now known
            try:
                files = job.entry.spec.install(voice, fetched, self._voices_dir)
            except ProviderUnavailableError as exc:  # a package it needs is not installed: what to install
                raise ServiceError(exc.code, f"{voice.provider} voice {voice.name} cannot be installed: {exc}") from exc
            except (ProviderError, ValueError, OSError) as exc:
                raise ServiceError("voice_download_failed", f"{voice.provider} voice {voice.name} from "
                                   f"{job.entry.base_url} is not a usable voice: {exc}; check the voices URL "
                                   "setting (is it a mirror of the catalog's files?)") from exc
        finally:
            for path in fetched.values():  # what install did not move: a checked file never lingers
                path.unlink(missing_ok=True)
        log.info("installed %s voice %s: %s", voice.provider, voice.name, ", ".join(str(f) for f in files))
        return {"provider": voice.provider, "name": voice.name, "files": [str(f) for f in files]}

    # -- a newer catalog -----------------------------------------------------------------------
    def refresh_catalog(self, profile: str, request: CatalogRequest) -> Future[dict[str, Any]]:
        """``update``: fetch each provider's catalog index under its base URL, check it with the
        provider's parser, rename it into place; then the count of catalog voices by provider."""
        def work() -> dict[str, Any]:
            updated = [self._refresh(name) for name, spec in self._catalog.specs().items()
                       if request.update and spec.index] if request.update else []
            counts: dict[str, int] = {}
            for voice in self._catalog.voices():
                counts[voice.provider] = counts.get(voice.provider, 0) + 1
            return {"id": request.id, "updated": updated, "voices": counts}

        return self._pool.submit(work)

    def _refresh(self, provider: str) -> str:
        spec = self._catalog.specs()[provider]
        base = getattr(self._settings, f"{provider}_voices_url", spec.base_url)
        url = base + spec.index
        target = self._catalog.fetched_file(provider)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            request = urllib.request.Request(url, headers={"User-Agent": f"voice-agent/{__version__}"})
            with urlopen(request, timeout=self._settings.voice_download_timeout) as response, \
                    open(temp, "wb") as out:
                body = response.read(CATALOG_LIMIT + 1)
                if len(body) > CATALOG_LIMIT:
                    raise failed(url, f"the catalog is larger than {CATALOG_LIMIT} bytes", "check the voices URL setting")
                out.write(body)
            try:
                json.loads(temp.read_text(encoding="utf-8"))
                spec.load(temp)  # the provider's parser: a catalog it cannot read never replaces one it can
            except (ProviderError, ValueError) as exc:
                raise failed(url, f"not a {provider} catalog ({exc})", "check the voices URL setting") from None
            os.replace(temp, target)
        except (urllib.error.URLError, OSError) as exc:
            raise failed(url, str(getattr(exc, "reason", exc)), "check the network or the voices URL setting") from None
        finally:
            temp.unlink(missing_ok=True)
        self._catalog.forget()
        return provider


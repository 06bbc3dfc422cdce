"""The household's services, built once and started as a straight list of steps. Edges (MQTT,
HTTP, Wyoming, the CLI) hold a ``Core`` and reach it through ``commands``; the core knows no
edge."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.commands import Command, command_table
from agent.config.model import ConfigError
from agent.config.schema import voice_config_schema
from agent.config.store import ConfigStore
from agent.config.watch import ConfigWatcher
from agent import memory as memory_state
from agent import __version__
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.gpu.status import NvmlInfo
from agent.layout import Layout
from agent.nodes.service import NodeService, NodeSources
from agent.nodes.state import Ability, Queues, http_url
from agent.nodes.train_worker import TrainWorker
from agent.nodes.worker import SpeakWorker
from agent.blobs.cache import BlobCache
from agent.blobs.offers import Offers
from agent.blobs.index import BlobIndex, kept_roots
from agent.record.samples import SampleService
from agent.record.service import RecordService
from agent.record.streams import StreamSessions
from agent.requests import ConfigSetRequest, EmptyRequest
from agent.settings import AgentSettings
from agent.speak.actions import ProviderActions
from agent.speak.engines import ProviderPool, list_voices
from agent.speak.requests import SpeakRequest
from agent.speak.remote import RemoteSpeech
from agent.speak.service import SpeakService
from agent.train.registry import trainers
from agent.train.remote import RemoteTraining
from agent.train.service import TrainService
from agent.voices.catalog import Catalog
from agent.voices.installed import InstalledVoices
from agent.voices.listing import listing
from agent.access import check_command
from agent.voices.download import room, stale_parts
from agent.voices.imports import (ImportOptions, ImportSlot, UploadRoom, clean_leftovers, import_voices, limits_for,
                                  upload_room)
from agent.voices.names import VoiceNames
from agent.voices.requests import ImportRequest, VoicesRequest
from agent.voices.resolve import resolve, voice_parts
from agent.voices.service import VoiceDownloads
from providers.registry import SPECS

log = logging.getLogger(__name__)

STALL_LIMIT = 300.0  # a speak request that made no audio for this long has a hung engine: let systemd restart us


class Core:
    """Owns every service; ``start`` brings them up, ``stop`` takes them down in reverse."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.layout = Layout(settings.home)
        self.events = EventBus()
        self.state = StateBoard()
        self.arbiter = GpuArbiter(
            NvmlInfo(), HogPauser(settings.gpu_hogs, self.layout.paused_gpu_users),
            lambda name, data: self.events.emit("gpu", name, data),
        )
        self.catalog = Catalog.for_settings(settings)
        self.engines = ProviderPool(gpu_guard=self.arbiter.reserve, on_create=self._engine_created,
                                    arena=settings.speak_arena != "off", spinning=settings.onnx_spinning)
        self.installed_voices = InstalledVoices(lambda provider, ctx: self.engines.get(provider).voices(ctx))
        self.names = VoiceNames(self.catalog, self.installed_voices, self.layout.provider_context)
        self.configs = ConfigStore(self.layout, self.events, check=self.names.problems, canonical=self.names.canonical)
        self.downloads = VoiceDownloads(settings, self.catalog, self.layout.household_voices, self.events,
                                        self.installed)
        self.actions = ProviderActions(self.engines, self.configs, self.layout, self.events, settings.command_queue_depth)
        url = http_url(settings.http_host, settings.http_port, settings.http_enabled)
        self.nodes = NodeService(
            settings.node, __version__, settings.worker, url,
            NodeSources(profiles=self.layout.names, abilities=self._abilities, gpu=lambda: self.state.get("gpu"), queues=self._queues))
        self.blobs = BlobIndex(lambda: kept_roots(self.layout))
        self.blob_cache = BlobCache(self.layout.blob_cache, settings.blob_cache_mb << 20)
        self.offers = Offers(self.layout.work_dir / "offered") if settings.worker else None
        token = settings.http_token
        self.remote = RemoteSpeech(settings.node, url, self.nodes.registry, self.blobs,
                                   token=lambda: token.get_secret_value() if token else "")
        self.worker = SpeakWorker(settings.node, self.layout, self.engines, self.blob_cache,
                                  lambda: token.get_secret_value() if token else "", self._node_url,
                                  own={"sovits": {"server_url": settings.sovits_url}} if settings.sovits_url else {},
                                  ) if settings.worker else None
        self.speak = SpeakService(
            self.layout, self.configs, self.engines, self.events, self.state, settings.queue_depth, settings.max_text_chars,
            settings.max_audio_seconds, voice_ready=self.downloads.ensure, remote=self.remote,
            release_after=settings.speak_release_seconds if settings.speak_arena == "idle" else None,
        )
        self.records = RecordService(self.layout, self.configs, self.events, self.state, settings.record_queue_depth,
                                     queue_bytes=settings.record_queue_bytes,
                                     analysis_idle_seconds=settings.analysis_idle_seconds)
        self.samples = SampleService(self.records, self.layout, self.configs, self.events, settings.command_queue_depth)
        self.streams = StreamSessions(self.layout, self.records, self.events, settings.hermes_sites,
                                      settings.stream_inbox_bytes)
        self.remote_train = RemoteTraining(settings.node, url, self.nodes.registry, self.blobs,
                                           token=lambda: token.get_secret_value() if token else "", cache=self.blob_cache)
        self.train = TrainService(settings, self.layout, self.configs, self.records, self.events, self.state, self.arbiter,
                                  remote=self.remote_train)
        self.train_worker = TrainWorker(
            settings.node, self.layout, self.blob_cache, lambda: token.get_secret_value() if token else "", self._node_url,
            trainers=lambda: trainers(settings.extra_trainers), reserve=self.arbiter.reserve,
            need_vram_mb=settings.train_vram_mb, pause_hogs=settings.pause_gpu_hogs_for_training,
            busy=lambda: self.train.runner.running_job is not None, home_online=self.nodes.registry.online,
            offers=self.offers, url=url if token else "", inline_bytes=settings.train_reply_files_mb << 20,
        ) if settings.worker else None
        if self.train_worker is not None:
            self.train.others_running = self.train_worker.running
        self.watcher = ConfigWatcher(self.layout, self._config_changed)
        self.events.listen(self._voice_arrived)
        self.import_slot = ImportSlot()
        self.commands: dict[str, Command] = command_table(self)
        self.state.watch(lambda key, document: self._node_changed())
        # whether requests reach us over the broker: the daemon sets the MQTT door's own answer
        self.reachable: Callable[[], bool] = lambda: True

    def start(self) -> None:
        self.configs.reload_all(announce=False)
        clean_leftovers(self.layout.uploads_dir, [self.layout.household_voices,
                                                  *(self.layout.voices_dir(p) for p in self.layout.names())])
        stale_parts(self.downloads.staging)
        self.blob_cache.start()
        if self.train_worker is not None:
            self.train_worker.start()
        for profile in self.layout.names():
            self._fetch_configured_voice(profile)
            self.speak.preload(profile)
            self.records.open(profile)  # creates the profile's data folders
        self.watcher.start()
        self.train.start()
        self.nodes.start()

    def problems(self) -> list[str]:
        """Why the agent cannot serve, in whole or in part (empty when healthy): ``/api/health``."""
        configs = [f"profile {name!r}: {error}" for name, error in sorted(self.configs.errors().items())]
        voices = [
            f"profile {name!r}: {error['provider']} voice {error['voice']!r} does not speak ({error['code']}): "
            f"{error['message']}" for name, error in sorted(self.speak.voice_errors().items())
        ]
        return self.stuck() + self.records.problems() + configs + voices

    def stuck(self) -> list[str]:
        """What a restart would mend: the systemd watchdog is fed only when empty. A profile's record
        path that is down is not among them: a restart would not mend it, and would stop every profile."""
        found = [f"speak worker stuck or dead: {name}" for name in self.speak.stalled(STALL_LIMIT)]
        if not self.watcher.alive:
            found.append("voice.json watcher stopped")
        return found

    def memory(self) -> dict[str, Any]:
        """The agent's memory for ``/api/health``: its process tree's RSS, its limit (MemoryMax),
        what a new job may still take (``agent/memory.py``)."""
        return memory_state.report().as_dict()

    def availability(self, problems: list[str]) -> str:
        """``offline`` while the broker's requests cannot reach us (health says what the MQTT
        status topic's last will says), else ``online``, or ``unhealthy`` with ``problems``."""
        if not self.reachable():
            return "offline"
        return "unhealthy" if problems else "online"

    def stop(self) -> None:
        self.nodes.stop()
        self.watcher.stop()
        self.train.stop()
        self.streams.stop()
        self.records.stop()
        self.samples.stop()
        self.speak.stop()
        self.downloads.stop()
        self.actions.stop()
        self.engines.close()

    # -- small commands ----------------------------------------------------------------------
    def speak_to(self, profile: str, request: SpeakRequest, out: Any) -> Any:
        """A speak request; one that names a finished training job (``trained``) is said with that
        job's voice for this request only (the page's Listen), the profile's voice.json untouched."""
        trial = self.train.voice_of(profile, request.trained) if request.trained else None
        return self.speak.submit(profile, self.voice_named(profile, request), out, trial)

    def voice_named(self, profile: str, request: SpeakRequest) -> SpeakRequest:
        """The request with the provider its voice name means and the voice's own name (a catalog
        alias resolved): agent/voices/resolve.py. Dictionary look-ups, and a listing of the installed
        voices only when the catalog would change the request: it runs on the door's thread."""
        named = resolve(request.provider, request.voice, self.configs.get(profile).tts.provider, self.catalog,
                        lambda provider, name: self.installed(profile, provider, name))
        if (named.provider, named.voice) == (request.provider, request.voice):
            return request
        log.debug("voice %r of %s means %s:%s", request.voice, profile, named.provider, named.voice)
        return request.model_copy(update={"provider": named.provider, "voice": named.voice})

    def voices(self, profile: str, request: VoicesRequest) -> Any:
        """Every provider's voices, installed and (``catalog``) downloadable: it imports engines and
        reads files, so it runs on the samples' thread."""
        def work() -> dict[str, Any]:
            installed, problems = list_voices(self.engines, self.layout.provider_context(profile))
            found = listing(installed, self.catalog, with_catalog=request.catalog, provider=request.provider,
                            language=request.language)
            return {"id": request.id, "voices": found, "unavailable": problems}

        return self.samples.later(work)

    def import_voices(self, profile: str, request: ImportRequest, upload: bool = False) -> Any:
        """Install the voices of a file, folder or archive (file work: on the samples' thread); the
        profile's event stream says ``voices.imported`` for each. One import at a time (``busy``);
        an upload (``reserve_upload``) holds the slot already, and its file is moved, not copied.
        What lands counts against the voices' disk cap, as downloads do."""
        if not upload:
            self.import_slot.take()

        def work() -> dict[str, Any]:
            try:
                layout = self.layout
                target = layout.voices_dir(profile) if request.scope == "profile" else layout.household_voices
                free = room(target, self.settings.voice_download_max_mb << 20)
                installed = import_voices(layout.under_profile(profile, request.path), target,
                                          ImportOptions(request.name, request.replace, consume=upload),
                                          limits_for(self.settings.voice_import_max_mb, free))
            finally:
                if not upload:
                    self.import_slot.release()
            for entry in installed:
                self.events.emit(profile, "voices.imported", {"provider": entry["provider"], "name": entry["name"],
                                                              "scope": request.scope})
            return {"id": request.id, "installed": installed}

        try:
            return self.samples.later(work)
        except BaseException:
            if not upload:
                self.import_slot.release()
            raise

    def reserve_upload(self, profile: str, size: int) -> UploadRoom:
        """Before an upload's body is read: access (voice.json ``access.commands``), the import slot
        (``busy``) and room on the disk for the ``size`` it announces (``disk_full``). The caller
        releases ``import_slot`` once the import is done or refused."""
        check_command(self.configs.get(profile).access, "voices.import")
        self.import_slot.take()
        try:
            return upload_room([self.layout.household_voices, self.layout.voices_dir(profile)],
                               self.settings.voice_download_max_mb << 20, size)
        except BaseException:
            self.import_slot.release()
            raise

    def config(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        config = self.configs.get(profile)
        return {"id": request.id, "config": config.model_dump(mode="json", by_alias=True), "error": self.configs.error(profile)}

    def set_config(self, profile: str, request: ConfigSetRequest) -> Any:
        """Write the change (on the samples' thread: it is file work); the watcher applies it."""
        def work() -> dict[str, Any]:
            try:
                config = self.configs.update(profile, request.changes)
            except ConfigError as exc:
                problems = [{"field": p.field, "message": p.message, **({"code": p.code} if p.code else {})}
                            for p in exc.problems]
                raise ServiceError(exc.code, str(exc), {"problems": problems}) from exc
            return {"id": request.id, "config": config.model_dump(mode="json", by_alias=True)}

        return self.samples.later(work)

    def config_schema(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        return {"id": request.id, **voice_config_schema()}

    def gpu_status(self, profile: str, request: EmptyRequest) -> Any:
        """The GPUs (NVML, on the samples' thread), who holds one (the arbiter's reservations) and
        the job that runs now with its device."""
        def work() -> dict[str, Any]:
            return {"id": request.id, "gpu": self.arbiter.info.report().as_dict(), "holders": self.arbiter.holders(),
                    "training": self.train.runner.running_info(), "providers_loaded": self.engines.loaded()}

        return self.samples.later(work)

    def _config_changed(self, profile: str | None) -> None:
        for name in [profile] if profile else self.layout.names():
            self.configs.reload(name)
            self._fetch_configured_voice(name)
            self.speak.preload(name)

    def installed(self, profile: str, provider: str, name: str) -> bool:
        """Whether the profile can use this voice now (its engine lists it): asked by every speak
        request that names a catalog voice, so it is the cached listing (agent/voices/installed.py)."""
        return self.names.installed(profile, provider, name, self.configs.get(profile))

    def _fetch_configured_voice(self, profile: str) -> None:
        """A voice.json that names a catalog voice not installed: fetch it now (on demand), so the
        profile's requests find it; with on-demand off, the log says why it will not speak."""
        tts = self.configs.get(profile).tts
        settings = tts.settings_for(tts.provider)
        if not settings.voice_chosen:  # the provider's own pick (Kokoro's per language): fetched only when asked
            return
        try:
            self.downloads.want(profile, tts.provider, settings.voice_name)
        except ServiceError as exc:
            log.warning("profile %s: %s", profile, exc)

    def _voice_arrived(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        """A download finished: each profile whose configured voice did not speak for want of it
        loads it again now (on the download's thread), so state and health stop saying it is missing."""
        if name != "voices.download.finished":
            return
        for waiting, error in self.speak.voice_errors().items():
            if error["provider"] == data.get("provider") and data.get("name") in voice_parts(error["provider"], error["voice"]):
                self.speak.preload(waiting)

    def _engine_created(self, name: str, engine: Any) -> None:
        self.actions.on_engine(name, engine)  # the node's document says it is loaded at its next beat

    def find_blob(self, sha256: str) -> Path | None:
        """The file with this hash that this node lends: one it made for another node's job, or one
        of its own kept files."""
        offered = self.offers.find(sha256) if self.offers is not None else None
        return offered if offered is not None else self.blobs.find(sha256)

    def _node_url(self, node: str) -> str | None:
        """A node's HTTP door as its state document says it."""
        state = self.nodes.registry.state_of(node)
        return None if state is None or not state.url else state.url

    def _node_changed(self) -> None:
        """A state document changed (the GPU report, a profile's queue): the node's may have too."""
        self.nodes.changed()

    def _abilities(self) -> list[Ability]:
        """Every provider of this version (its trainer, whether its engine runs now; a worker's, those
        it can run for others) and the extra trainers of the settings: what the node can run."""
        loaded = set(self.engines.loaded())
        unserved = self.worker.unserved() if self.worker is not None else set()  # a worker without their server
        found = [Ability(provider=spec.name, trains=spec.trainer is not None, loaded=spec.name in loaded)
                 for spec in SPECS if spec.name not in unserved]
        return found + [Ability(provider=name, trains=True) for name in sorted(self.settings.extra_trainers)
                        if name not in {spec.name for spec in SPECS}]

    def _queues(self) -> Queues:
        from agent.train.jobs import ACTIVE

        return Queues(speak=sum(self.speak.queue_depth(name) for name in self.layout.names()),
                      train=self.train.jobs.count(ACTIVE))

"""VoiceDownloads (agent/voices/service.py) in-process against the local mirror: a voice is fetched
once however many ask, events tell its progress, on-demand waits a bounded time or says why not,
a newer catalog replaces the snapshot only when it parses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ServiceError
from agent.events import EventBus
from agent.settings import AgentSettings
from agent.voices.catalog import Catalog
from agent.voices.requests import CatalogRequest, DownloadRequest
from agent.voices.service import VoiceDownloads
from tests.voice_mirror import KOKORO_VOICE, MIRROR_VOICE, VoiceMirror


@pytest.fixture(scope="module")
def mirror() -> Iterator[VoiceMirror]:
    with VoiceMirror() as server:
        yield server


class Rig:
    def __init__(self, mirror: VoiceMirror, home: Path, **settings: Any) -> None:
        self.settings = AgentSettings(home=home, piper_voices_url=mirror.piper_url, kokoro_voices_url=mirror.kokoro_url,
                                      **settings)
        self.voices = home / "out" / "voices"
        self.catalog = Catalog({"piper": mirror.piper_url, "kokoro": mirror.kokoro_url}, self.voices / "catalog")
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        bus = EventBus()
        bus.listen(lambda profile, name, data, when: self.events.append((profile, name, data)))
        self.downloads = VoiceDownloads(self.settings, self.catalog, self.voices, bus, self.installed)

    def installed(self, profile: str, provider: str, name: str) -> bool:
        return (self.voices / f"{name}.onnx.json").is_file() or (self.voices / "kokoro" / f"{name}.npy").is_file()

    def names(self) -> list[str]:
        return [name for _, name, _ in self.events]


@pytest.fixture
def rig(mirror: VoiceMirror, tmp_path: Path) -> Iterator[Rig]:
    mirror.faults.clear()
    mirror.requests.clear()
    made = Rig(mirror, tmp_path)
    made.downloads.refresh_catalog("default", CatalogRequest(update=True)).result(30)  # knows the mirror voice
    mirror.requests.clear()
    yield made
    made.downloads.stop()
    mirror.faults.clear()


def test_the_mirror_catalog_is_fetched_checked_and_used(rig: Rig, mirror: VoiceMirror) -> None:
    assert (rig.voices / "catalog" / "piper.json").is_file()
    assert rig.catalog.find("piper", MIRROR_VOICE) is not None
    mirror.files["voices.json"] = b'{"broken": 1}'
    try:
        with pytest.raises(ServiceError) as refused:
            rig.downloads.refresh_catalog("default", CatalogRequest(update=True)).result(30)
    finally:
        mirror.files["voices.json"] = __import__("json").dumps(mirror.catalog).encode()
    assert refused.value.code == "voice_download_failed"
    assert rig.catalog.find("piper", MIRROR_VOICE) is not None  # the good one stays
    assert sorted(p.name for p in (rig.voices / "catalog").iterdir()) == ["piper.json"]


def test_two_requests_for_one_voice_share_one_download(rig: Rig, mirror: VoiceMirror) -> None:
    mirror.faults.stall[".onnx"] = 0.5  # the second request comes while the first is under way
    first = rig.downloads.download("default", DownloadRequest(names=[MIRROR_VOICE]))
    second = rig.downloads.download("kitchen", DownloadRequest(names=[MIRROR_VOICE], provider="piper"))
    answer = first.result(60)
    assert second.result(60)["installed"] == answer["installed"]
    assert [path for path, _ in mirror.requests].count(f"en/en_US/mirror/medium/{MIRROR_VOICE}.onnx") == 1
    (installed,) = answer["installed"]
    assert installed["provider"] == "piper" and installed["name"] == MIRROR_VOICE
    assert sorted(Path(f).name for f in installed["files"]) == [f"{MIRROR_VOICE}.onnx", f"{MIRROR_VOICE}.onnx.json"]
    assert sorted(p.name for p in (rig.voices / ".downloads" / "piper").iterdir()) == []
    started = [data for profile, name, data in rig.events if name == "voices.download.started" and profile == "default"]
    assert len(started) == 1 and started[0]["total"] > 60_000_000  # (kitchen hears it too if it joined before)
    finished = [(profile, data) for profile, name, data in rig.events if name == "voices.download.finished"]
    assert sorted(p for p, _ in finished) == ["default", "kitchen"]  # both askers hear the end
    progress = [data for _, name, data in rig.events if name == "voices.download.progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == started[0]["total"]
    assert rig.downloads.download("default", DownloadRequest(names=[MIRROR_VOICE])).result(5)["installed"][0]["files"] == []


def test_a_kokoro_voice_installs_as_npy(rig: Rig) -> None:
    answer = rig.downloads.download("default", DownloadRequest(names=[KOKORO_VOICE])).result(60)
    assert answer["installed"][0]["provider"] == "kokoro"
    assert (rig.voices / "kokoro" / f"{KOKORO_VOICE}.npy").is_file()


def test_a_corrupt_file_fails_with_an_event_and_leaves_nothing(rig: Rig, mirror: VoiceMirror) -> None:
    mirror.faults.corrupt.add(".onnx")
    with pytest.raises(ServiceError) as refused:
        rig.downloads.download("default", DownloadRequest(names=[MIRROR_VOICE])).result(60)
    assert refused.value.code == "voice_download_failed" and mirror.piper_url in str(refused.value)
    (failed,) = [data for _, name, data in rig.events if name == "voices.download.failed"]
    assert failed["code"] == "voice_download_failed" and failed["name"] == MIRROR_VOICE
    assert not list(rig.voices.glob("*.onnx*")) and not list((rig.voices / ".downloads").rglob("*.*"))
    assert not rig.downloads.busy("piper", MIRROR_VOICE)  # a later request tries again


def test_an_unknown_name_is_refused_with_the_closest(rig: Rig) -> None:
    with pytest.raises(ServiceError) as refused:
        rig.downloads.download("default", DownloadRequest(names=["en_US-lessac-medum"]))
    assert refused.value.code == "voice_not_found" and "did you mean en_US-lessac-medium" in str(refused.value)


def test_on_demand_waits_a_bounded_time_then_says_downloading(mirror: VoiceMirror, tmp_path: Path) -> None:
    rig = Rig(mirror, tmp_path, voice_download_wait=0.2)
    rig.downloads.refresh_catalog("default", CatalogRequest(update=True)).result(30)
    mirror.faults.stall[".onnx"] = 1.0
    try:
        beats: list[None] = []
        with pytest.raises(ServiceError) as waiting:
            rig.downloads.ensure("default", "piper", MIRROR_VOICE, beat=lambda: beats.append(None))
        assert waiting.value.code == "voice_downloading"
        assert beats, "a speak worker waiting for a download showed no progress: the watchdog would call it stuck"
        assert rig.downloads.busy("piper", MIRROR_VOICE)
        done = threading.Event()
        rig.downloads.start("default", rig.downloads.entry(MIRROR_VOICE)).add_done_callback(lambda f: done.set())
        assert done.wait(60)
        rig.downloads.ensure("default", "piper", MIRROR_VOICE)  # installed now: no wait, no error
    finally:
        mirror.faults.clear()
        rig.downloads.stop()


def test_with_on_demand_off_the_answer_says_so(mirror: VoiceMirror, tmp_path: Path) -> None:
    rig = Rig(mirror, tmp_path, voice_download_on_demand=False)
    mirror.requests.clear()
    with pytest.raises(ServiceError) as off:
        rig.downloads.ensure("default", "piper", "en_US-lessac-medium")
    assert off.value.code == "downloads_off" and "voice-agent voices download en_US-lessac-medium" in str(off.value)
    rig.downloads.ensure("default", "piper", "no-such-voice")  # no catalog voice: the engine says what is wrong
    assert mirror.requests == []


def test_an_alias_and_a_blend_in_voice_json_are_fetched_and_found_by_the_engines(rig: Rig, mirror: VoiceMirror) -> None:
    """voice.json may name a catalog alias or a blend of catalog voices: the config store keeps the
    voices' own names, ``ensure`` fetches each part, and the engines then find the very voices."""
    from agent.config.model import VoiceConfig
    from agent.voices.installed import InstalledVoices
    from agent.voices.names import VoiceNames
    from providers.base import ProviderContext
    from providers.kokoro.voices import VoiceLibrary
    from agent.speak.engines import ProviderPool
    from tests.voice_mirror import MIRROR_VOICES, kokoro_pt

    alias, piper_name = "en-us-mirror5-medium", MIRROR_VOICES[4]
    mirror.catalog[piper_name]["aliases"] = [alias]
    mirror.files["voices.json"] = __import__("json").dumps(mirror.catalog).encode()
    mirror.files["kokoro/voices/af_bella.pt"] = kokoro_pt("jf_gongitsune")
    try:
        rig.downloads.refresh_catalog("default", CatalogRequest(update=True)).result(30)
    finally:
        mirror.catalog[piper_name]["aliases"] = []
        mirror.files["voices.json"] = __import__("json").dumps(mirror.catalog).encode()
    ctx = ProviderContext(profile="default", profile_dir=rig.voices.parent, voices_dirs=(rig.voices,),
                          data_dir=rig.voices, run_dir=rig.voices, home=rig.voices.parent, samples_dir=rig.voices)
    names = VoiceNames(rig.catalog, InstalledVoices(lambda provider, c: []), lambda profile: ctx)
    written = VoiceConfig.model_validate({"tts": {"provider": "kokoro", "piper": {"model": alias},
                                                  "kokoro": {"voice": "af_heart:0.5,af_bella:0.5"}}})
    assert names.problems("default", written) == []
    kept = names.canonical("default", written)
    piper, kokoro = kept.tts.settings_for("piper"), kept.tts.settings_for("kokoro")
    assert (piper.voice_name, kokoro.voice_name) == (piper_name, "af_heart:0.5,af_bella:0.5")
    rig.downloads.ensure("default", "piper", piper.voice_name)
    rig.downloads.ensure("default", "kokoro", kokoro.voice_name)
    assert piper_name in [voice.name for voice in ProviderPool().get("piper").voices(ctx)]
    _, files = VoiceLibrary().style(kokoro.voice_name, "", ctx)
    assert files == [rig.voices / "kokoro" / "af_bella.npy", rig.voices / "kokoro" / "af_heart.npy"]

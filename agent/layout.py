"""Every path under ``VOICE_AGENT_HOME``, in one place.

```
etc/voice.json                       household defaults     etc/agent.env   settings file
profiles/<name>/etc/voice.json       a profile's overrides
profiles/<name>/out/voices/          its voices; samples/, datasets and trained voices beside them
profiles/<name>/out/voice-agent.db   its samples' metadata
profiles/<name>/out/training/<job>/  a job's checkpoints     out/reports, out/cache/tts
out/voices/                          voices every profile may use
out/models/                          derived files (the assembled Kokoro model)
out/uploads/                         voice files uploaded over HTTP, until imported
out/agent.lock                       the one agent of this home (held while it runs)
out/jobs.db, out/jobs.lock          training jobs, and who runs them
out/gpu-paused.json                  GPU users paused by us
logs/run/                            job logs and status files, the GPT-SoVITS server's log
```
Profile names are plain identifiers (a path segment and a topic level, never ``..``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from providers.base import ProviderContext
from providers.common.names import is_plain_name

# <base>/gpu/... carries the GPU state, <base>/node/... and <base>/work/... the nodes' documents and work,
# <base>/status the agent's own: none of them is a profile
RESERVED = frozenset({"gpu", "node", "work", "status"})


@dataclass(frozen=True)
class StatusFiles:
    """The seed's pair of files for one provider's training of one speaker: status JSON and log."""

    json_path: Path
    log_path: Path


@dataclass(frozen=True)
class Layout:
    home: Path

    # -- the household -----------------------------------------------------------------------
    @property
    def etc_dir(self) -> Path:
        return self.home / "etc"

    @property
    def global_config(self) -> Path:
        return self.etc_dir / "voice.json"

    @property
    def settings_file(self) -> Path:
        return self.etc_dir / "agent.env"

    @property
    def household_voices(self) -> Path:
        return self.home / "out" / "voices"

    @property
    def uploads_dir(self) -> Path:
        """Voice files uploaded over HTTP, each in a folder of its own until imported."""
        return self.home / "out" / "uploads"

    @property
    def models_dir(self) -> Path:
        return self.home / "out" / "models"

    @property
    def run_dir(self) -> Path:
        return self.home / "logs" / "run"

    @property
    def blob_cache(self) -> Path:
        """Other nodes' files fetched by hash (agent/blobs/cache.py)."""
        return self.home / "out" / "blobs"

    @property
    def work_dir(self) -> Path:
        """Other nodes' work laid out for an engine (links into the blob cache), one folder per job's files."""
        return self.home / "out" / "work"

    @property
    def jobs_db(self) -> Path:
        return self.home / "out" / "jobs.db"

    @property
    def agent_lock(self) -> Path:
        return self.home / "out" / "agent.lock"

    @property
    def jobs_lock(self) -> Path:
        return self.home / "out" / "jobs.lock"

    @property
    def paused_gpu_users(self) -> Path:
        return self.home / "out" / "gpu-paused.json"

    def status_files(self, provider: str, speaker: str) -> StatusFiles:
        base = self.run_dir / f"{provider}-training-{speaker}"
        return StatusFiles(base.with_suffix(".json"), base.with_suffix(".log"))

    # -- profiles ------------------------------------------------------------------------------
    @property
    def profiles_root(self) -> Path:
        return self.home / "profiles"

    def names(self) -> list[str]:
        if not self.profiles_root.is_dir():
            return []
        return sorted(p.name for p in self.profiles_root.iterdir() if p.is_dir() and self.is_profile_name(p.name))

    @staticmethod
    def is_profile_name(name: str) -> bool:
        return is_plain_name(name) and name not in RESERVED

    def exists(self, name: str) -> bool:
        return self.is_profile_name(name) and (self.profiles_root / name).is_dir()

    def profile_dir(self, name: str) -> Path:
        if not is_plain_name(name):
            raise ValueError(f"not a plain profile name: {name!r}")
        return self.profiles_root / name

    def profile_config(self, name: str) -> Path:
        return self.profile_dir(name) / "etc" / "voice.json"

    def voices_dir(self, profile: str) -> Path:
        return self.profile_dir(profile) / "out" / "voices"

    def samples_dir(self, profile: str) -> Path:
        return self.voices_dir(profile) / "samples"

    def samples_db(self, profile: str) -> Path:
        return self.profile_dir(profile) / "out" / "voice-agent.db"

    def voice_folder(self, profile: str, folder: str, speaker: str) -> Path:
        """A provider's folder of one speaker: a dataset export or a trained voice."""
        if not is_plain_name(speaker):
            raise ValueError(f"not a plain speaker name: {speaker!r}")
        return self.voices_dir(profile) / folder / speaker

    def training_dir(self, profile: str, job: str) -> Path:
        return self.trainings_dir(profile) / job

    def trainings_dir(self, profile: str) -> Path:
        """The checkpoint folders of the profile's training jobs, one per job."""
        return self.profile_dir(profile) / "out" / "training"

    def reports_dir(self, profile: str) -> Path:
        return self.profile_dir(profile) / "out" / "reports"

    def under_profile(self, profile: str, configured: str) -> Path:
        """A path from voice.json: absolute as it is, relative under the profile's folder."""
        path = Path(configured)
        return path if path.is_absolute() else self.profile_dir(profile) / path

    def provider_context(self, profile: str) -> ProviderContext:
        return ProviderContext(
            profile=profile,
            profile_dir=self.profile_dir(profile),
            voices_dirs=(self.voices_dir(profile), self.household_voices),
            data_dir=self.models_dir,
            run_dir=self.run_dir,
            home=self.home,
            samples_dir=self.samples_dir(profile),
        )

"""What one provider is, in one place. The registry is a table of these; the agent derives from
it the voice.json model, the export targets, readiness, the training outputs, the provider's
MQTT commands and its CLI subcommands. Nothing here imports an engine: specs are cheap to load.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from providers.base import ProviderContext
from providers.catalog import CatalogSpec
from providers.settings_base import ProviderSettings


class SampleView(Protocol):
    """A kept recording, as far as a provider cares (the record path's samples are these)."""

    @property
    def id(self) -> str: ...

    @property
    def file(self) -> str: ...

    @property
    def duration(self) -> float: ...

    @property
    def score(self) -> float: ...

    @property
    def transcript(self) -> str | None: ...

    @property
    def transcript_mismatch(self) -> str | None:
        """Why the transcript is not what was said (the words heard differ), or None."""
        ...


def true_transcript(sample: SampleView) -> bool:
    """The sample has a transcript, and nothing says its words differ from it: what datasets that
    learn or speak from transcripts (Kokoro, GPT-SoVITS) may take."""
    return bool(sample.transcript) and not sample.transcript_mismatch


@dataclass(frozen=True)
class Readiness:
    ready: bool
    samples: int
    minutes: float
    missing: list[str]
    progress: float = 0.0  # 0-1, how far the samples are on the way (a progress bar's share)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def enough(samples: Sequence[SampleView], min_count: int, min_minutes: float, extra: Sequence[str] = (),
           noun: str = "samples") -> Readiness:
    """The common rule: at least ``min_count`` samples and ``min_minutes`` of audio (``noun``: what
    counts, in the words that say what is missing: "samples with transcripts")."""
    minutes = sum(s.duration for s in samples) / 60
    missing = list(extra)
    if len(samples) < min_count:
        missing.append(f"{min_count - len(samples)} more {noun} (have {len(samples)}, need {min_count})")
    if minutes < min_minutes:
        missing.append(f"{min_minutes - minutes:.1f} more minutes of {noun} (have {minutes:.1f}, need {min_minutes:g})")
    shares = [len(samples) / min_count if min_count else 1.0, minutes / min_minutes if min_minutes else 1.0]
    return Readiness(not missing, len(samples), round(minutes, 2), missing, round(min(1.0, *shares), 3))


Choose = Callable[[Sequence[SampleView]], list[SampleView]]
WriteIndex = Callable[[Path, Sequence[SampleView]], None]
ReadinessRule = Callable[[Sequence[SampleView], float], Readiness]  # (kept samples, score threshold)


@dataclass(frozen=True)
class DatasetSpec:
    """The samples a provider learns from (or, for GPT-SoVITS, speaks from), exported to
    ``out/voices/<folder>/<speaker>/`` with whatever index file the provider reads."""

    folder: str
    readiness: ReadinessRule
    needs: str = "samples"  # said when there is nothing to export: "no <needs> to export"
    choose: Choose = list  # which of the candidate samples go in
    write_index: WriteIndex | None = None  # metadata.csv, a reference transcript
    refresh_event: str | None = None  # re-exported for the profile's speaker as samples arrive; this event says so


@dataclass(frozen=True)
class RoughPace:
    """A trainer's pace measured elsewhere (the bench), for an estimate before any job ran here."""

    step_seconds: float
    setup_seconds: float
    device: str  # "cpu" or "cuda"
    where: str  # "bench/RESULTS.md, 2-core CPU"


# (the finished job's output files, its speaker, its validated params) -> the voice.json changes
# that make it the profile's voice
UseVoice = Callable[[Sequence[Path], str, Any], dict[str, Any]]


@dataclass(frozen=True)
class TrainerSpec:
    target: str  # "module:Class" implementing providers.training.Trainer, imported in the job's process
    params: type[BaseModel]  # validated before a job is queued
    outputs: str  # the finished voice goes to out/voices/<outputs>/<speaker>/
    check: Callable[[Path, Any], list[str]] | None = None  # what a dataset folder lacks for these params
    steps: Callable[[Any], int] | None = None  # how many steps a job with these params reports (its total)
    rough: RoughPace | None = None
    use: UseVoice | None = None
    # the peak memory (MB) of a job with these params, measured on the bench: checked against what the
    # machine and the agent's MemoryMax allow before the job starts (None: not known, not checked)
    memory_mb: Callable[[Any], int] | None = None
    # its jobs may run on a worker node (voice.json runOn.train): its checkpoints and finished files come
    # back in the worker's replies (at most 32 MB a reply), larger ones by hash from the worker's blob route
    remote: bool = True


@dataclass(frozen=True)
class ActionContext:
    """What an action gets: the agent's one engine of this provider, the profile's section of
    voice.json and the profile's context."""

    engine: Any
    settings: ProviderSettings
    ctx: ProviderContext


@dataclass(frozen=True)
class ActionSpec:
    """An extra command of the provider, ``<provider>.<name>`` over MQTT (GPT-SoVITS' server)."""

    name: str
    params: type[BaseModel]
    run: Callable[[ActionContext, Any], dict[str, Any]]
    help: str


class Announce(Protocol):
    """Tell the profiles whose settings ``concerns`` that something happened to the engine."""

    def __call__(self, name: str, data: dict[str, Any], concerns: Callable[[ProviderSettings], bool]) -> None: ...


class CliHost(Protocol):
    """What a provider's CLI may ask of the agent that runs it."""

    def context(self, profile: str) -> ProviderContext: ...

    def provider_settings(self, profile: str, provider: str) -> ProviderSettings:
        """The profile's section of voice.json (its last good form, or the defaults)."""
        ...

    def request(self, profile: str, command: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """A command answered by the running agent: the response's data, or ``CliError``."""
        ...

    def train(self, profile: str, provider: str, speaker: str, params: dict[str, Any], dataset: Path | None) -> TrainOutcome:
        """Train through the job runner (the running agent's, else in the foreground with a
        progress bar); what it made, or ``CliError``."""
        ...

    def update_voice_config(self, profile: str, changes: dict[str, Any]) -> None:
        """Merge ``changes`` into the profile's voice.json (validated, atomically)."""
        ...


@dataclass(frozen=True)
class TrainOutcome:
    outputs: list[Path]
    metrics: dict[str, float]


class CliError(Exception):
    """A CLI command failed; the message is printed as ``error: ...``."""


@dataclass(frozen=True)
class CliSpec:
    add_parser: Callable[[Any], None]  # given argparse's subparsers, adds ``voice-agent <provider> ...``
    run: Callable[[CliHost, argparse.Namespace], int]


@dataclass(frozen=True)
class RemoteSpec:
    """How another node speaks with this provider for a profile that lives here: the files the
    work needs (``inputs``: role -> file, at home; the worker fetches them by hash) and, on the
    worker, the settings that use them (``place``: the files linked under a folder of the job's)."""

    inputs: Callable[[ProviderSettings, ProviderContext], dict[str, Path]]
    place: Callable[[ProviderSettings, dict[str, Path], Path], ProviderSettings]
    # the roles that must come from the home when ``inputs`` names them (a job without the first is
    # refused); any other role the home cannot lend, the worker has its own of
    required: tuple[str, ...] = ("model",)
    # settings each worker gives from its own configuration, over the job's (agent.env: a server of its
    # own); a worker without them takes none of this provider's work, and its node document omits it
    own: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    settings: type[ProviderSettings]  # its section of voice.json: tts.<name>
    engine: str  # "module:Class" of the engine, imported on first use
    summary: str
    aliases: tuple[str, ...] = ()
    extra: str = ""  # the pip extra that installs its packages ("" = always installed)
    dataset: DatasetSpec | None = None
    trainer: TrainerSpec | None = None
    actions: tuple[ActionSpec, ...] = ()
    watch: Callable[[Any, Announce], None] | None = None  # called once with the engine when it is created
    cli: CliSpec | None = None
    catalog: CatalogSpec | None = None  # voices it can fetch (providers/catalog.py)
    remote: RemoteSpec | None = None  # its speech may run on another node (voice.json runOn.speak)

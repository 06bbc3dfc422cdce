"""GPT-SoVITS as the registry knows it: the reference it speaks from (the best 5-10 s sample with
its transcript, kept up to date as samples arrive), its server's commands and events."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from providers.sovits import actions, cli, remote
from providers.sovits.config import SovitsSettings
from providers.spec import CliSpec, DatasetSpec, ProviderSpec, Readiness, RemoteSpec, SampleView, true_transcript

REFERENCE_SECONDS = (5.0, 10.0)


def best_reference(samples: Sequence[SampleView]) -> list[SampleView]:
    """The best 5-10 s sample with a true transcript (none when there is no such sample)."""
    low, high = REFERENCE_SECONDS
    fitting = [s for s in samples if true_transcript(s) and low <= s.duration <= high]
    return [max(fitting, key=lambda s: s.score)] if fitting else []


def readiness(samples: Sequence[SampleView], threshold: float) -> Readiness:
    best = best_reference(samples)
    missing = [] if best else ["one clean 5-10 s sample with its transcript"]
    minutes = round(best[0].duration / 60, 2) if best else 0.0
    return Readiness(bool(best), len(best), minutes, missing, 1.0 if best else 0.0)


def write_transcript(directory: Path, samples: Sequence[SampleView]) -> None:
    """GPT-SoVITS needs the reference's words as its prompt text: ``<name>.txt`` beside it."""
    for sample in samples:
        (directory / f"{Path(sample.file).stem}.txt").write_text(sample.transcript or "", encoding="utf-8")


SPEC = ProviderSpec(
    name="sovits",
    settings=SovitsSettings,
    engine="providers.sovits.engine:SovitsProvider",
    summary="GPT-SoVITS zero-shot cloning from the owner's reference, through its own HTTP server",
    aliases=("gpt-sovits",),
    dataset=DatasetSpec("sovits-reference", readiness, "a 5-10 s sample with a transcript", best_reference,
                        write_transcript, refresh_event="sovits.reference"),
    actions=actions.ACTIONS,
    watch=actions.watch,
    cli=CliSpec(cli.add_parser, cli.run),
    # a worker speaks it through its own server (VOICE_AGENT_SOVITS_URL) from the reference sent by hash
    remote=RemoteSpec(remote.inputs, remote.place, required=(remote.REFERENCE, remote.TRANSCRIPT), own=remote.OWN),
)

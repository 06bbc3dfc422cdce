"""A picture of a profile's samples (score histogram, minutes per day, speaker similarity),
next to a text summary: easier to judge at a glance than a table."""

from __future__ import annotations

import io
import time
from pathlib import Path

from agent.record.readiness import all_providers
from agent.record.store import Sample
from providers.common.files import atomic_write_bytes, atomic_write_text


def summary_text(profile: str, samples: list[Sample], threshold: float) -> str:
    lines = [f"Samples of profile {profile}: {len(samples)}, {sum(s.duration for s in samples) / 60:.1f} minutes"]
    if samples:
        scores = sorted(s.score for s in samples)
        lines.append(f"Score: min {scores[0]:.0f}, median {scores[len(scores) // 2]:.0f}, max {scores[-1]:.0f}")
        with_text = sum(1 for s in samples if s.transcript)
        lines.append(f"With transcript: {with_text}")
    for provider, state in all_providers(samples, threshold).items():
        verdict = "ready" if state["ready"] else "not ready: " + "; ".join(state["missing"])
        lines.append(f"{provider:7} {verdict}")
    return "\n".join(lines) + "\n"


def report_files(directory: Path) -> tuple[Path, Path]:
    """Where a profile's report goes: the picture and the text summary."""
    return directory / "samples-report.png", directory / "samples-report.txt"


def write_report(profile: str, samples: list[Sample], threshold: float, directory: Path) -> tuple[Path, Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (hist, daily, scatter) = plt.subplots(1, 3, figsize=(15, 4.2))
    fig.suptitle(f"Voice samples of '{profile}' ({len(samples)} kept)")
    hist.hist([s.score for s in samples], bins=range(0, 105, 5), color="#4c72b0", edgecolor="white")
    hist.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:g}")
    hist.set(title="Score", xlabel="score", ylabel="samples", xlim=(0, 100))
    hist.legend()
    per_day: dict[str, float] = {}
    for s in samples:
        day = time.strftime("%Y-%m-%d", time.localtime(s.created))
        per_day[day] = per_day.get(day, 0.0) + s.duration / 60
    days = sorted(per_day)
    daily.bar(days, [per_day[d] for d in days], color="#55a868")
    daily.set(title="Minutes kept per day", ylabel="minutes")
    daily.tick_params(axis="x", rotation=45)
    sims = [(s.speaker_similarity, s.score) for s in samples if s.speaker_similarity is not None]
    scatter.scatter([x for x, _ in sims], [y for _, y in sims], s=14, alpha=0.7, color="#8172b2")
    scatter.set(title="Speaker similarity vs score", xlabel="similarity to the profile's voice", ylabel="score",
                xlim=(0, 1), ylim=(0, 100))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    png, txt = report_files(directory)
    atomic_write_bytes(png, buffer.getvalue())
    atomic_write_text(txt, summary_text(profile, samples, threshold))
    return png, txt

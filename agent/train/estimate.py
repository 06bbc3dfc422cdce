"""How long a training job will take on this machine, and how sure that is.

The step time comes from the last job of the same trainer measured here (the runner keeps it in
the jobs database: seconds to set up, seconds a training step, on which device). Where no job has
run yet, a trainer may name a rough figure measured elsewhere (the project's bench); it is said
to be rough. Where there is neither, there is no estimate, and that is said too. The words are
made here so every door says the same thing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Source = Literal["measured", "rough", "none"]
MIN_STEPS_MEASURED = 2  # fewer steps say little about a step's time


@dataclass(frozen=True)
class Timing:
    """A job's measured pace: what the runner saw between the first and last step it reported."""

    device: str  # "cpu" or "cuda"
    setup_seconds: float  # from the process start until the first training step was done
    step_seconds: float  # average time of a step after the first
    steps: int  # how many steps that average is made of
    job: str = ""  # the job it was measured on ("" for a figure from elsewhere)
    where: str = ""  # for a rough figure: where it was measured

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Any) -> Timing | None:
        """A stored timing, or None when it is missing or not one (an older jobs.db row)."""
        if not isinstance(document, dict):
            return None
        try:
            timing = cls(str(document["device"]), float(document["setup_seconds"]), float(document["step_seconds"]),
                         int(document["steps"]), str(document.get("job", "")), str(document.get("where", "")))
        except (KeyError, TypeError, ValueError):
            return None
        if not (math.isfinite(timing.step_seconds) and timing.step_seconds > 0 and math.isfinite(timing.setup_seconds)):
            return None
        return timing


@dataclass(frozen=True)
class Estimate:
    source: Source
    seconds: float | None  # the whole job, setup included; None: no estimate
    steps: int | None
    step_seconds: float | None
    device: str | None
    words: str  # "about 12 min (measured: 6 s a step × 60 steps on this machine's CPU, plus 40 s to load)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(device: str, started: float, first_step: tuple[float, int] | None, last_step: tuple[float, int] | None,
            job: str) -> Timing | None:
    """A job's pace from (time, step) of the first and last step reports that advanced (monotonic
    seconds); None when too few steps were seen to say."""
    if first_step is None or last_step is None:
        return None
    (first_at, first), (last_at, last) = first_step, last_step
    done = last - first
    if done < MIN_STEPS_MEASURED - 1 or last_at <= first_at:
        return None
    step_seconds = (last_at - first_at) / done
    # the first step's report came one step after setup ended
    setup = max(0.0, first_at - started - step_seconds)
    return Timing(device, round(setup, 2), round(step_seconds, 3), done, job)


def estimate(steps: int | None, measured: Timing | None, rough: Timing | None) -> Estimate:
    """The job's time from the best pace known: measured here, else rough, else none."""
    if steps is None:
        return Estimate("none", None, None, None, None, "no estimate: this trainer does not say how many steps it takes")
    timing, source = (measured, "measured") if measured is not None else (rough, "rough")
    if timing is None:
        return Estimate("none", None, steps, None, None,
                        f"no estimate yet: no job of this trainer has run on this machine ({steps} steps); "
                        "the time left shows once its first steps are done")
    seconds = timing.setup_seconds + steps * timing.step_seconds
    device = "GPU" if timing.device == "cuda" else "CPU"
    pace = f"{seconds_words(timing.step_seconds)} a step × {steps} steps"
    setup = f", plus {seconds_words(timing.setup_seconds)} to set up" if timing.setup_seconds >= 1 else ""
    if source == "measured":
        basis = f"measured: {pace} on this machine's {device}{setup}, from job {timing.job}"
    else:
        basis = f"rough: {pace} on a {device} elsewhere ({timing.where}){setup}; not yet measured here"
    return Estimate(source, round(seconds, 1), steps, timing.step_seconds, timing.device,  # type: ignore[arg-type]
                    f"about {duration_words(seconds)} ({basis})")


def seconds_words(seconds: float) -> str:
    """A step's time: '0.05 s', '6 s', '1.5 min'."""
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def duration_words(seconds: float) -> str:
    """A whole job's time, as a person would say it: '40 s', '12 min', '2 h 5 min'."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"

"""The smallest real Kokoro voicepack job, as the end-to-end training tests ask for it: a dataset
folder of transcribed sentences in the owner's voice (two, unless told), filled as a user would,
and the request that trains them for two epochs."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import Probe
from tests.speech import OWNER_RATE, owner

SENTENCES = ("Turn the heating down a little.", "The parcel arrived this morning.")
# the trainer's need (about 5 GB, for sentences up to 64 phonemes) may be more than a busy test
# machine has free now: these two short sentences need less, so the job starts without the check
NO_MEMORY_CHECK = {"VOICE_AGENT_TRAIN_MEMORY_CHECK": "false"}


def voicepack_dataset(home: Path, speaker: str = "joe", sentences: tuple[str, ...] = SENTENCES) -> Path:
    """``kokoro-datasets/<speaker>`` of the default profile of ``home``: a WAV of each sentence in
    the owner's voice and metadata.csv."""
    import soundfile

    dataset = home / "profiles" / "default" / "out" / "voices" / "kokoro-datasets" / speaker
    dataset.mkdir(parents=True)
    with (dataset / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="|")
        for index, text in enumerate(sentences):
            soundfile.write(dataset / f"s{index}.wav", owner(text), OWNER_RATE)
            writer.writerow([f"s{index}.wav", text])
    return dataset


def start_voicepack_job(probe: Probe, speaker: str = "joe") -> str:
    """The job's id, once the default profile has queued it to run now."""
    response = probe.request("default", "train", {
        "provider": "kokoro", "speaker": speaker, "when": "now",
        "params": {"epochs": 2, "baseVoice": "jm_kumo", "minMinutes": 0, "minSamples": 2, "lines": 1,
                   "memory": "fast"}})  # whole steps, whatever is free now (the test asks for no memory check)
    assert response["status"] == "ok", response
    return str(response["data"]["job"]["id"])

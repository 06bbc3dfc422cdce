"""What one text costs a Piper voice in memory. A sentence's phonemes go to the model in runs of
at most ``MAX_RUN_PHONEMES``, because the model's intermediate tensors grow with the audio a run
makes: 200 Chinese characters read by an English voice were one 1649-phoneme "sentence", two
minutes of audio in a single run. And ONNX Runtime's arena keeps the peak of the longest run it
ever served (one 961-id run took a loaded voice from 193 to 452 MB, kept for good), so after a
text (one ``synthesize`` call) with a run longer than ``KEEP_ARENA_IDS`` the arena is handed back:
everyday sentences keep it warm, a long text leaves nothing behind."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from piper import PiperConfig, PiperVoice

from providers.common.onnx_arena import shrink

MAX_RUN_PHONEMES = 200  # about 40 words: a sentence longer than that is cut between words
PAUSES = frozenset(",;:")  # espeak keeps these in a sentence's phonemes; a cut after one sounds natural
# A sentence of about 25 words. What its arena needs (up to ~130 MB) an agent speaking everyday
# paragraphs holds anyway; handing that back after each of them made a paragraph ~15 % slower.
KEEP_ARENA_IDS = 256


def phoneme_runs(phonemes: Sequence[str], most: int = MAX_RUN_PHONEMES) -> list[list[str]]:
    """``phonemes`` in order as runs of at most ``most``; nothing is dropped."""
    runs: list[list[str]] = []
    rest = list(phonemes)
    while len(rest) > most:
        cut = _cut(rest, most)
        runs.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        runs.append(rest)
    return runs


def _cut(phonemes: list[str], most: int) -> int:
    """How many phonemes the first run takes: up to the last word break after a pause (a comma)
    in the second half of ``most``, else up to the last word break, else ``most``."""
    breaks = [i for i in range(1, most) if phonemes[i] == " "]
    after_pause = [i for i in breaks if i > most // 2 and phonemes[i - 1] in PAUSES]
    return (after_pause or breaks or [most - 1])[-1] + 1


def model_feed(config: PiperConfig, ids: Sequence[int], speaker: int | None = None,
               length_scale: float | None = None) -> dict[str, np.ndarray]:
    """What a Piper model (or its encoder part) is fed for one run, as Piper's own
    ``phoneme_ids_to_audio`` feeds it: the voice's noise scales, its default speaker when it has
    several and none is named."""
    feed: dict[str, np.ndarray] = {
        "input": np.array([list(ids)], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([config.noise_scale, config.length_scale if length_scale is None else length_scale,
                            config.noise_w_scale], dtype=np.float32),
    }
    if config.num_speakers > 1:
        feed["sid"] = np.array([config.default_speaker_id if speaker is None else speaker], dtype=np.int64)
    return feed


def release_arena(voice: PiperVoice) -> None:
    """A run of the empty sentence that ends by freeing every arena region not in use: what the
    longer runs before it grew goes back to the system (nothing to do for a session without an
    arena). Shrinking after every run instead made Piper about 15 % slower: each run then faults
    its memory in afresh."""
    shrink(voice.session, model_feed(voice.config, voice.phonemes_to_ids([])))

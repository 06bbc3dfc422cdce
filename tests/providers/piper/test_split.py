"""A Piper voice split at its vocoder (providers/piper/split.py, chunked.py), in this process with
the bundled voice: the vocoder run on chunks of z with the measured padding gives the whole
decode's audio; one frame less padding does not; the split is made once per voice file and made
again when the file changes or a part is missing; a voice that cannot be split (no onnx, a graph
of another shape) is spoken whole; and a text's first run leaves in two chunks that sound as the
whole run does."""

from __future__ import annotations

import json
import os
import shutil
import sys
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from providers.base import ProviderContext
from providers.piper import split as piper_split
from providers.piper.chunked import FIRST_FRAMES, HEAD_SHARE, Peaks, SplitVoice, head_frames, run_audio
from providers.piper.config import PiperSettings
from providers.piper.engine import PiperProvider, bundled_voice, config_of, open_session, read_config
from providers.piper.runs import model_feed
from providers.piper.split import SplitFiles, prepared_split, span
from tests.contexts import loose_context
from tests.piper_duo import write_duo

TEXT = "The kitchen lights are on now, and the front door is locked for the night."


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> SplitVoice:
    files = prepared_split(bundled_voice(), tmp_path_factory.mktemp("models"), open_session)
    assert files is not None
    return SplitVoice(files, open_session(files.encoder), open_session(files.decoder))


def feed_of(text: str) -> dict[str, np.ndarray]:
    from piper import PiperVoice

    config = read_config(config_of(bundled_voice()))
    voice = PiperVoice(session=None, config=config)
    (phonemes,) = voice.phonemize(text)
    return model_feed(config, voice.phonemes_to_ids(phonemes))


def chunked(split: SplitVoice, z: np.ndarray, cuts: list[int], pad: int) -> np.ndarray:
    def run(part: np.ndarray) -> np.ndarray:
        return np.asarray(split.decoder.run(None, {split.files.latent: part})[0]).reshape(-1)

    edges = [0, *cuts, z.shape[2]]
    return np.concatenate([span(run, z, a, b, pad, split.files.hop) for a, b in zip(edges, edges[1:])])


def test_the_vocoder_on_chunks_of_z_gives_the_whole_decode(split: SplitVoice) -> None:
    """The same z (the randomness is the encoder's): cut anywhere, the audio is the whole decode's."""
    z = split.latent(feed_of(TEXT))
    frames = z.shape[2]
    whole = split.decode(z, {})
    assert whole.size == frames * split.files.hop
    for cuts in ([FIRST_FRAMES], [1], [frames - 1], [FIRST_FRAMES, 2 * FIRST_FRAMES, frames - 3]):
        audio = chunked(split, z, cuts, split.files.pad)
        assert audio.shape == whole.shape
        assert np.max(np.abs(audio - whole)) < 1e-5, cuts
    head, tail = split.decode(z, {}, 0, FIRST_FRAMES), split.decode(z, {}, FIRST_FRAMES)
    assert np.max(np.abs(np.concatenate([head, tail]) - whole)) < 1e-5


def test_the_padding_is_the_least_that_makes_it_exact(split: SplitVoice) -> None:
    """The probe measures the vocoder's reach: a frame less and the audio at the cut differs."""
    z = split.latent(feed_of(TEXT))
    whole = split.decode(z, {})
    short = chunked(split, z, [FIRST_FRAMES], split.files.pad - 1)
    assert np.max(np.abs(short - whole)) > 1e-5  # 6e-5 for the bundled voice at 9 frames: its reach is 10
    assert split.files.hop == 256 and 2 <= split.files.pad <= piper_split.MOST_PAD


def test_the_split_is_made_once_per_voice_file_and_again_when_it_changes(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "voices" / "joe.onnx"
    model.parent.mkdir()
    shutil.copy(bundled_voice(), model)
    made: list[Path] = []
    make = piper_split._make
    monkeypatch.setattr(piper_split, "_make", lambda *args: made.append(args[0]) or make(*args))
    first = prepared_split(model, tmp_path / "models", open_session)
    assert first is not None and made == [model]
    assert prepared_split(model, tmp_path / "models", open_session) == first and made == [model]  # read back
    os.utime(model, ns=(1, 1))  # the voice replaced (its file tag changes)
    assert prepared_split(model, tmp_path / "models", open_session) == first and len(made) == 2
    first.encoder.unlink()  # a part gone (a disk cleaned by hand): made again, not loaded half
    assert prepared_split(model, tmp_path / "models", open_session) == first and len(made) == 3
    record = json.loads(next((tmp_path / "models" / "piper").glob("*.split.json")).read_text())
    assert record["pad"] == first.pad and record["source"] == str(model)
    assert sorted(p.suffix for p in (tmp_path / "models" / "piper").iterdir()) == [".json", ".onnx", ".onnx"]  # no temp files


def test_a_voice_whose_vocoder_is_not_found_is_spoken_whole_and_not_tried_again(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model = write_duo(tmp_path / "voices")  # a graph with Piper's inputs and no vocoder
    assert prepared_split(model, tmp_path / "models", open_session) is None
    monkeypatch.setattr(piper_split, "_make", lambda *args: pytest.fail("made again"))
    assert prepared_split(model, tmp_path / "models", open_session) is None
    assert not list((tmp_path / "models" / "piper").glob("*.onnx"))


def test_without_onnx_the_voice_is_spoken_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # a Piper-only agent: the import fails
    ctx = ProviderContext("default", tmp_path, (tmp_path / "voices",), tmp_path / "models", tmp_path, tmp_path, tmp_path,
                          listener_waits=True)
    provider = PiperProvider()
    chunks = [list(provider.synthesize(TEXT, PiperSettings(), ctx)) for _ in range(2)]
    (loaded,) = provider._voices.values()
    assert loaded.split is None and [len(c) for c in chunks] == [1, 1]
    assert not (tmp_path / "models" / "piper").exists()


def deterministic_voice(folder: Path, name: str = "still") -> ProviderContext:
    """The bundled voice as ``name`` with its noise scales at 0: the same text is the same z every time."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    try:
        os.link(bundled_voice(), model)  # 63 MB not copied where the file system allows
    except OSError:
        shutil.copy(bundled_voice(), model)
    config = json.loads(config_of(bundled_voice()).read_text())
    config["inference"].update(noise_scale=0.0, noise_w=0.0)
    config_of(model).write_text(json.dumps(config))
    return loose_context(folder.parent, (folder,))


def test_a_texts_first_run_leaves_in_two_chunks_that_sound_as_the_whole_run(tmp_path: Path) -> None:
    ctx = replace(deterministic_voice(tmp_path / "voices"), listener_waits=True)
    provider, settings = PiperProvider(), PiperSettings(model="still")
    whole = list(provider.synthesize(TEXT, settings, ctx))  # the voice's first run: whole (no loudness known yet)
    again = list(provider.synthesize(TEXT, settings, ctx))
    (loaded,) = provider._voices.values()
    assert loaded.split is not None and len(whole) == 1 and len(again) == 2
    hop = loaded.split.files.hop
    assert len(again[0].pcm) == head_frames(len(whole[0].pcm) // 2 // hop) * hop * 2
    assert {c.sample_rate for c in again} == {22050}
    a = np.frombuffer(whole[0].pcm, np.int16).astype(int)
    b = np.frombuffer(b"".join(c.pcm for c in again), np.int16).astype(int)
    assert a.shape == b.shape and np.max(np.abs(a - b)) <= 2  # the same samples (one peak known: the same gain)
    assert np.max(np.abs(b)) >= 32700  # scaled to full range as Piper scales a run
    two = list(provider.synthesize(f"{TEXT} {TEXT}", settings, ctx))  # only a text's first run is cut
    assert len(two) == 3 and two[1].pcm == again[1].pcm and len(two[2].pcm) == len(whole[0].pcm)
    assert [c.partial for c in whole + again + two] == [False, True, False, True, False, False]  # a part says so
    nobody_waits = list(provider.synthesize(TEXT, settings, replace(ctx, listener_waits=False)))
    assert len(nobody_waits) == 1 and nobody_waits[0].pcm == whole[0].pcm  # no cut where no one waits on it


class FakeSplit:
    """A split voice whose z is ``frames`` long and whose audio is given: what ``run_audio`` scales."""

    def __init__(self, audio: np.ndarray, hop: int = 4) -> None:
        self.audio, self.files = audio, SplitFiles(Path(), Path(), "z", (), 1, hop, pad=2)

    def latent(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros((1, 1, self.audio.size // self.files.hop), np.float32)

    def decode(self, z: np.ndarray, feed: dict[str, np.ndarray], start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.audio[start * self.files.hop : (z.shape[2] if stop is None else stop) * self.files.hop]


def scaled(audio: np.ndarray, typical: float | None, first: bool = True) -> list[np.ndarray]:
    peaks = Peaks()
    if typical is not None:
        peaks.add(None, typical)
    voice = FakeSplit(audio)
    found = list(run_audio(voice, {}, peaks, None, nullcontext(), first))  # type: ignore[arg-type]
    assert [more for _, more in found] == [True] * (len(found) - 1) + [False]  # only a run's last part ends it
    return [audio for audio, _ in found]


def test_a_first_chunk_is_scaled_by_the_voices_typical_peak_and_the_rest_never_clips() -> None:
    hop = 4
    head = np.full(FIRST_FRAMES * hop, 0.2, np.float32)
    quiet_tail, loud_tail = np.full(60 * hop, 0.3, np.float32), np.full(60 * hop, 0.8, np.float32)
    first, rest = scaled(np.concatenate([head, quiet_tail]), typical=0.5)
    assert np.allclose(first, 0.4) and np.allclose(rest, 0.6)  # one gain, 1 / 0.5, for both
    first, rest = scaled(np.concatenate([head, loud_tail]), typical=0.5)
    assert np.allclose(first, 0.4) and np.allclose(rest, 1.0)  # the rest at 1 / its own peak: no clipping
    first, rest = scaled(np.concatenate([np.full(FIRST_FRAMES * hop, 0.6, np.float32), quiet_tail]), typical=0.5)
    assert np.allclose(first, 1.0) and np.allclose(rest, 0.5)  # a head louder than typical sets the gain
    (whole,) = scaled(np.concatenate([head, loud_tail]), typical=None)  # nothing known: whole, Piper's scaling
    assert np.isclose(np.max(whole), 1.0) and np.allclose(whole[: head.size], 0.25)
    (whole,) = scaled(np.concatenate([head, loud_tail]), typical=0.5, first=False)  # a later run: whole
    assert np.isclose(np.max(whole), 1.0)
    (short,) = scaled(np.full((FIRST_FRAMES + 4) * hop, 0.2, np.float32), typical=0.5)  # too short to gain from a cut
    assert np.allclose(short, 1.0)
    (silent,) = scaled(np.zeros(100 * hop, np.float32), typical=None)
    assert not np.any(silent)


def test_a_long_first_run_gets_a_head_long_enough_to_cover_the_rests_decode() -> None:
    hop = 4
    assert head_frames(FIRST_FRAMES * HEAD_SHARE - 1) == FIRST_FRAMES  # a sentence: the small head
    long_run = 30 * FIRST_FRAMES * HEAD_SHARE // 10
    first, rest = scaled(np.full(long_run * hop, 0.2, np.float32), typical=0.2)
    assert first.size == long_run // HEAD_SHARE * hop and first.size + rest.size == long_run * hop
    assert head_frames(long_run) == long_run // HEAD_SHARE > FIRST_FRAMES


def write_speakers_voice(folder: Path, channels: int = 4, speakers: int = 3) -> Path:
    """A voice of several speakers whose vocoder (one convolution of reach 1 frame, a frame a
    sample) adds the speaker's own offset, as a VITS vocoder is conditioned on the speaker."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Cast", ["input"], ["ids"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids", "axis1"], ["row"]),
        helper.make_node("Mul", ["row", "spread"], ["z"]),  # z: (1, channels, phonemes), from the text
        helper.make_node("Conv", ["z", "dec.conv_pre.weight"], ["voiced"], pads=[1, 1]),
        helper.make_node("Gather", ["emb_g.weight", "sid"], ["g"]),
        helper.make_node("Unsqueeze", ["g", "axis2"], ["g3"]),
        helper.make_node("Add", ["voiced", "g3"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "speakers",
        [helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
         helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("sid", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "axis1"),
                     numpy_helper.from_array(np.array([2], np.int64), "axis2"),
                     numpy_helper.from_array(rng.standard_normal((1, channels, 1)).astype(np.float32), "spread"),
                     numpy_helper.from_array(rng.standard_normal((1, channels, 3)).astype(np.float32), "dec.conv_pre.weight"),
                     numpy_helper.from_array(rng.standard_normal((speakers, 1)).astype(np.float32), "emb_g.weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "speakers.onnx"))
    return folder / "speakers.onnx"


def test_a_vocoder_that_reads_the_speaker_is_fed_the_speaker(tmp_path: Path) -> None:
    model = write_speakers_voice(tmp_path / "voices")
    files = prepared_split(model, tmp_path / "models", open_session)
    assert files is not None and files.speaker_inputs == ("sid",) and (files.hop, files.pad, files.channels) == (1, 1, 4)
    voice, whole = SplitVoice(files, open_session(files.encoder), open_session(files.decoder)), open_session(model)
    ids = list(range(1, 30))
    for speaker in (0, 2):
        feed = {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
                "scales": np.zeros(3, np.float32), "sid": np.array([speaker], np.int64)}
        expected = whole.run(None, feed)[0].reshape(-1)
        z = voice.latent(feed)
        audio = np.concatenate([voice.decode(z, feed, 0, 10), voice.decode(z, feed, 10)])
        assert np.allclose(audio, expected, atol=1e-5)

"""A Piper voice cut in two at its vocoder's input, so that a sentence's first audio comes before
the whole sentence is decoded (what Piper's own streaming export did with a separate encoder and
decoder; here made from the ordinary ``.onnx`` a user installs).

A Piper voice is VITS: the encoder part (text encoder, duration predictor, flow; all the model's
randomness) turns phonemes into a latent ``z`` of one frame per ``hop`` samples (256), and the
vocoder (HiFi-GAN, convolutions only) turns ``z`` into audio. A convolution's output at a frame
depends only on the frames within its reach, so the vocoder run on a slice of ``z`` with ``pad``
frames more on each side gives the slice's audio exactly (the padding's audio is cut off). The
reach is measured once per voice (``probe_pad``: 10 frames for a medium voice) rather than
assumed, and a vocoder that reads more than ``z`` and the speaker (the text, its length) is not
split.

The two parts are written once per voice file beside the agent's other prepared models
(``<data_dir>/piper/``, atomically, the record last), with what was learnt about them in a small
JSON record; a voice that cannot be split is recorded too, so that it is not tried again. Making
them needs the ``onnx`` package (the ``kokoro`` extra has it); without it the voice is spoken
whole, as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from providers.common.files import atomic_write_bytes, atomic_write_text, file_tag
from providers.common.process import release_free_memory

log = logging.getLogger(__name__)

SPLIT_VERSION = 1
VOCODER_WEIGHT = "dec.conv_pre.weight"  # the HiFi-GAN's first convolution, as torch names it in Piper's export
VOCODER_NODE = "/dec/conv_pre/Conv"  # the same node by its scope name, for exports that renamed the weights
SPEAKER_INPUTS = frozenset({"sid"})  # what the vocoder may read beside z: the speaker (its conditioning)
MOST_PAD = 32  # frames; a vocoder that reaches farther is spoken whole
PROBE_FRAMES = 4 * MOST_PAD
EXACT = 1e-5  # a chunked decode this close to the whole one is the same audio (float rounding only)

Decode = Callable[[np.ndarray], np.ndarray]  # z (1, channels, frames) -> audio samples (1-D)


@dataclass(frozen=True)
class SplitFiles:
    """The voice's two parts and how to cut ``z`` for the second."""

    encoder: Path  # Piper's inputs -> z
    decoder: Path  # z (and the speaker) -> audio
    latent: str  # z's name: the decoder's first input
    speaker_inputs: tuple[str, ...]  # the decoder's other inputs (``sid`` of a voice of several speakers)
    channels: int
    hop: int  # samples per frame of z
    pad: int  # frames of z either side of a cut that make the cut's audio exact


def split_folder(data_dir: Path) -> Path:
    return data_dir / "piper"


def prepared_split(model: Path, data_dir: Path, make_session: Callable[[Path], Any]) -> SplitFiles | None:
    """The voice's two parts, made now if this voice file has none yet; None when it is spoken
    whole (no ``onnx`` here, a graph of another shape, a folder that cannot be written).
    ``make_session`` opens a part for the padding probe (the caller's session options)."""
    folder = split_folder(data_dir)
    stem = f"{model.stem}-{hashlib.sha1(str(model.resolve()).encode()).hexdigest()[:10]}"
    record = folder / f"{stem}.split.json"
    tag = file_tag(model)
    known = _read_record(record, tag)
    if known is not None:
        return known if isinstance(known, SplitFiles) else None
    try:
        import onnx  # noqa: F401  (the kokoro extra; optional for a Piper-only agent)
    except ImportError:
        log.info("Piper: %s is decoded whole (pip install onnx to hear each sentence's start sooner)", model.name)
        return None
    started = time.monotonic()
    try:
        files = _make(model, folder, stem, make_session)
    except OSError as exc:  # a folder that cannot be written: speak whole, try again next start
        log.warning("Piper: cannot write the split of %s to %s: %s", model.name, folder, exc)
        return None
    except Exception as exc:  # onnx's own errors (a file it cannot parse, a graph it cannot cut): speak whole
        log.warning("Piper: cannot split %s (%s: %s); it is decoded whole", model.name, type(exc).__name__, exc)
        files = None
    finally:
        release_free_memory()  # the graph's copies (~200 MB at their peak) go back to the system
    document: dict[str, Any] = {"version": SPLIT_VERSION, "tag": tag, "source": str(model)}
    if files is not None:
        document.update(encoder=files.encoder.name, decoder=files.decoder.name, latent=files.latent,
                        speaker_inputs=list(files.speaker_inputs), channels=files.channels, hop=files.hop, pad=files.pad)
    try:
        atomic_write_text(record, json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        log.warning("Piper: cannot write %s: %s", record, exc)
    if files is not None:
        log.info("Piper: split %s at its vocoder in %.1f s (padding %d frames)", model.name,
                 time.monotonic() - started, files.pad)
    return files


def _read_record(record: Path, tag: str) -> SplitFiles | bool | None:
    """The recorded split (False: recorded as not splittable), or None when it must be made."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if data.get("version") != SPLIT_VERSION or data.get("tag") != tag:
            return None
        if "decoder" not in data:
            return False
        files = SplitFiles(record.parent / str(data["encoder"]), record.parent / str(data["decoder"]), str(data["latent"]),
                           tuple(str(name) for name in data["speaker_inputs"]), int(data["channels"]), int(data["hop"]),
                           int(data["pad"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return files if files.encoder.is_file() and files.decoder.is_file() else None


def _make(model: Path, folder: Path, stem: str, make_session: Callable[[Path], Any]) -> SplitFiles | None:
    import onnx
    from onnx.utils import Extractor

    proto = onnx.load(str(model))
    graph = proto.graph
    entrance = next((node for node in graph.node if node.op_type == "Conv"
                     and (VOCODER_WEIGHT in node.input or node.name == VOCODER_NODE)), None)
    if entrance is None or len(graph.output) != 1:
        log.info("Piper: %s has no vocoder entrance to split at; it is decoded whole", model.name)
        return None
    latent = entrance.input[0]
    weights = {init.name: init for init in graph.initializer}
    weight = weights.get(entrance.input[1])
    read = inputs_read(graph, [graph.output[0].name], latent)
    if weight is None or len(weight.dims) != 3 or not read <= SPEAKER_INPUTS:
        log.info("Piper: the vocoder of %s reads %s; it is decoded whole", model.name, sorted(read) or "no z")
        return None
    proto = _with_latent_type(proto, latent)
    extractor = Extractor(proto)
    speaker_inputs = tuple(sorted(read))
    encoder = extractor.extract_model([i.name for i in graph.input if i.name not in weights], [latent])
    decoder = extractor.extract_model([latent, *speaker_inputs], [graph.output[0].name])
    files = SplitFiles(folder / f"{stem}.encoder.onnx", folder / f"{stem}.decoder.onnx", latent, speaker_inputs,
                       channels=int(weight.dims[1]), hop=0, pad=0)
    del proto, extractor
    atomic_write_bytes(files.decoder, decoder.SerializeToString())
    del decoder
    session = make_session(files.decoder)
    speaker = {name: np.zeros(1, np.int64) for name in speaker_inputs}
    measured = probe_pad(lambda z: session.run(None, {latent: z, **speaker})[0].reshape(-1), files.channels)
    if measured is None:
        log.info("Piper: the vocoder of %s reaches beyond %d frames; it is decoded whole", model.name, MOST_PAD)
        files.decoder.unlink(missing_ok=True)
        return None
    hop, pad = measured
    atomic_write_bytes(files.encoder, encoder.SerializeToString())
    return SplitFiles(files.encoder, files.decoder, latent, speaker_inputs, files.channels, hop, pad)


def _with_latent_type(proto: Any, latent: str) -> Any:
    """``proto`` with z's type recorded (what the two parts' graphs name as their output and input):
    Piper's exports record every tensor's; a graph saved without them gets them inferred, or a
    float tensor of unknown shape."""
    import onnx
    from onnx import TensorProto, helper

    if not any(info.name == latent for info in proto.graph.value_info):
        proto = onnx.shape_inference.infer_shapes(proto)
    if not any(info.name == latent for info in proto.graph.value_info):
        proto.graph.value_info.append(helper.make_tensor_value_info(latent, TensorProto.FLOAT, None))
    return proto


def inputs_read(graph: Any, outputs: Sequence[str], stop: str) -> set[str]:
    """The graph inputs that ``outputs`` depend on other than through ``stop`` (an empty set, or
    only the speaker, for a vocoder that reads nothing but z)."""
    producer = {out: node for node in graph.node for out in node.output}
    graph_inputs = {i.name for i in graph.input}
    seen: set[str] = set()
    found: set[str] = set()
    todo = list(outputs)
    while todo:
        name = todo.pop()
        if name in seen or name == stop:
            continue
        seen.add(name)
        if name in graph_inputs:
            found.add(name)
        node = producer.get(name)
        if node is not None:
            todo.extend(n for n in node.input if n)
            todo.extend(_subgraph_inputs(node))
    return found


def _subgraph_inputs(node: Any) -> list[str]:
    """Names a node's subgraphs (an If's branches, a Loop's body) read from outside them."""
    names: list[str] = []
    for attribute in node.attribute:
        for sub in [attribute.g, *attribute.graphs] if attribute.HasField("g") or attribute.graphs else []:
            names.extend(n for inner in sub.node for n in inner.input if n)
    return names


def probe_pad(decode: Decode, channels: int, frames: int = PROBE_FRAMES) -> tuple[int, int] | None:
    """(hop, pad) of a vocoder: how far a change in z reaches in its audio, in frames either way,
    found by changing z on one side of a cut and seeing where the audio changed; None when it
    reaches beyond ``MOST_PAD`` or the audio is not ``hop`` samples a frame."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((1, channels, frames)).astype(np.float32)
    whole = decode(z)
    hop, rest = divmod(whole.size, frames)
    if rest or hop == 0:
        return None
    cut = frames // 2
    after = z.copy()
    after[:, :, cut:] = rng.standard_normal(after[:, :, cut:].shape)
    before = z.copy()
    before[:, :, :cut] = rng.standard_normal(before[:, :, :cut].shape)
    tolerance = EXACT * float(np.max(np.abs(whole)))
    back = np.flatnonzero(np.abs(decode(after) - whole) > tolerance)  # how far later frames reach back
    ahead = np.flatnonzero(np.abs(decode(before) - whole) > tolerance)  # how far earlier frames reach ahead
    if back.size == 0 or ahead.size == 0:
        return None
    reach = max(cut * hop - int(back[0]), int(ahead[-1]) + 1 - cut * hop)
    pad = math.ceil(reach / hop)
    if pad > MOST_PAD:
        return None
    chunked = np.concatenate([span(decode, z, 0, cut, pad, hop), span(decode, z, cut, frames, pad, hop)])
    return (hop, pad) if np.max(np.abs(chunked - whole)) <= tolerance else None


def span(decode: Decode, z: np.ndarray, start: int, stop: int, pad: int, hop: int) -> np.ndarray:
    """The audio of frames ``start`` to ``stop`` of ``z``, decoded with up to ``pad`` frames more
    on either side and their audio cut off."""
    low, high = max(0, start - pad), min(z.shape[2], stop + pad)
    audio = decode(np.ascontiguousarray(z[:, :, low:high]))
    return audio[(start - low) * hop : (stop - low) * hop]

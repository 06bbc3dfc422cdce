"""What an imported folder of files holds, each voice checked by its provider's own loader before
it may land: a Piper model and config (ONNX Runtime builds a session, Piper parses the config), a
Kokoro voicepack or voice table (a finite float (510, 1, 256) style each, read without pickle or
with ``weights_only``), an RVC model and index (``providers.rvc.validate``: read without running
anything in the file, the index's width matched to the model's).

A file's first bytes must also be what its name says (an ``.onnx`` that is a protobuf, a ``.npy``
with numpy's magic, a ``.pth`` that is a torch zip or pickle), so a renamed file is refused with
``not_a_voice`` before any loader sees it. Kokoro voices are staged as ``.npy``: speaking with
them needs no torch."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.errors import ServiceError
from agent.voices.archives import Limits, check_npz
from providers.common.names import is_plain_name, is_voice_file_name

log = logging.getLogger(__name__)

VOICE_SUFFIXES = (".onnx", ".json", ".pt", ".npy", ".bin", ".npz", ".pth", ".index")
RVC_MODELS = "rvc-models"  # providers/rvc/assets.py MODELS_DIR: rvc-models/<speaker>/<speaker>.pth + .index
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_MAGIC = b"\x80"  # torch.save's legacy format: a pickle, protocol 2 or later
NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class Voice:
    """A checked voice, ready to land: its files (staged path, path under the voices folder), and
    for RVC the folder it owns whole (replaced as one)."""

    provider: str
    name: str
    files: tuple[tuple[Path, str], ...]
    folder: str = ""


def wanted(name: PurePosixPath) -> bool:
    """The members of an archive worth unpacking."""
    return name.suffix in VOICE_SUFFIXES


def _refuse(message: str) -> ServiceError:
    return ServiceError("not_a_voice", message)


def _starts_with(path: Path, *magics: bytes) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(8)
    return any(head.startswith(magic) for magic in magics)


def _voice_name(name: str, plain: bool = False) -> str:
    ok = is_plain_name(name) if plain else is_voice_file_name(name)
    if not ok:
        rule = "letters, digits, _ and - (at most 64)" if plain else "letters, digits, _, . and - (no path)"
        raise ServiceError("invalid_name", f"{name!r} cannot name a voice: use {rule}; give another with --name (or the name field)")
    return name


def plan(files: list[Path], staging: Path, name: str | None, limits: Limits) -> list[Voice]:
    """The voices ``files`` (all under ``staging``) make, each checked; ``name`` renames the only one."""
    configs = {f.parent / f.name.removesuffix(".json"): f for f in files if f.name.endswith(".onnx.json")}
    found: list[tuple[str, list[Path]]] = []  # (kind, its files)
    for file in sorted(files):
        suffix = file.suffix  # as the engines match them: lower case
        if suffix == ".onnx":
            if file not in configs:
                raise _refuse(f"{file.name} has no {file.name}.json beside it: a Piper voice is the pair")
            found.append(("piper", [file, configs[file]]))
        elif suffix in (".pt", ".npy"):
            found.append(("voicepack", [file]))
        elif suffix in (".bin", ".npz"):
            found.append(("table", [file]))
    models = [f for f in files if f.suffix == ".pth" and not f.name.startswith(("G_", "D_"))]
    if len(models) > 1:
        raise _refuse(f"several RVC models ({', '.join(sorted(m.name for m in models))}): import one at a time")
    if models:
        found.append(("rvc", [models[0], *_rvc_index(files, models[0])]))
    if not found:
        names = ", ".join(sorted(f.name for f in files)[:8]) or "no files"
        raise _refuse(f"no voice found ({names}): import a Piper .onnx with its .onnx.json, a Kokoro .pt/.npy or "
                      "voices .bin, or an RVC .pth (with its .index)")
    if name is not None and (len(found) > 1 or found[0][0] == "table"):
        raise ServiceError("invalid_payload", "a name can be given to one voice only; this import holds several")
    voices: list[Voice] = []
    for kind, parts in found:
        if kind == "piper":
            voices.append(piper_voice(parts[0], parts[1], name or parts[0].stem))
        elif kind == "voicepack":
            voices.append(kokoro_voicepack(parts[0], staging, name or parts[0].stem))
        elif kind == "table":
            voices.extend(kokoro_table(parts[0], staging, limits))
        else:
            voices.append(rvc_voice(parts[0], parts[1] if len(parts) > 1 else None, name or parts[0].stem))
    _refuse_twins(voices)
    return voices


def _refuse_twins(voices: list[Voice]) -> None:
    """Two voices of one provider with one name (``a/x.npy`` and ``b/x.npy``, two ``x.onnx`` in
    different folders) would land on the same files, the second over the first: ``invalid_name``."""
    seen: set[tuple[str, str]] = set()
    for voice in voices:
        if (voice.provider, voice.name) in seen:
            raise ServiceError("invalid_name", f"this import holds two {voice.provider} voices named {voice.name!r}: "
                                               "import them one at a time, or rename one")
        seen.add((voice.provider, voice.name))


def _rvc_index(files: list[Path], model: Path) -> list[Path]:
    """The model's index as RVC WebUI and Applio publish it (``added_IVF..._<name>_v2.index``;
    ``trained_*`` is the index before its vectors were added, no use for speaking)."""
    indexes = [f for f in files if f.suffix == ".index" and not f.name.startswith("trained_")]
    if len(indexes) > 1:
        indexes = [f for f in indexes if f.name.startswith("added_")] or indexes
    if len(indexes) > 1:
        indexes = [f for f in indexes if model.stem in f.name] or indexes
    if len(indexes) > 1:
        raise _refuse(f"several RVC indexes ({', '.join(sorted(f.name for f in indexes))}): keep the model's one")
    return indexes


def piper_voice(model: Path, config: Path, name: str) -> Voice:
    """ONNX Runtime must build a session of the model (as the engine will) and Piper parse its config."""
    name = _voice_name(name.removesuffix(".onnx"))
    if not _starts_with(model, b"\x08"):  # ModelProto field 1 (ir_version), a varint: every ONNX file starts so
        raise _refuse(f"{model.name} is not an ONNX model")
    from piper import PiperConfig

    try:
        document = json.loads(config.read_text(encoding="utf-8"))
        PiperConfig.from_dict(document)
    except Exception as exc:  # ValueError, KeyError, TypeError from JSON that is not Piper's config
        raise _refuse(f"{config.name} is not a Piper voice config: {type(exc).__name__}: {exc}") from None
    import onnxruntime

    try:
        options = onnxruntime.SessionOptions()
        options.enable_mem_pattern = False
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types
        raise _refuse(f"{model.name} is not a model ONNX Runtime can load: {exc}") from None
    inputs = {i.name for i in session.get_inputs()}
    if not {"input", "input_lengths", "scales"} <= inputs:
        raise _refuse(f"{model.name} is an ONNX model but not a Piper voice (inputs {sorted(inputs)})")
    return Voice("piper", name, ((model, f"{name}.onnx"), (config, f"{name}.onnx.json")))


def kokoro_voicepack(path: Path, staging: Path, name: str) -> Voice:
    """A (510, 1, 256) style: ``.npy`` without pickle, ``.pt`` with ``weights_only`` in a process of
    its own (``providers.kokoro.convert``: the agent never imports torch); staged as ``.npy``."""
    from providers.base import ProviderError
    from providers.kokoro.convert import pt_to_npy
    from providers.kokoro.voices import VoicepackError, load_voicepack, save_voicepack

    name = _voice_name(name)
    magic = NPY_MAGIC if path.suffix == ".npy" else ZIP_MAGIC
    if not _starts_with(path, magic, PICKLE_MAGIC if magic == ZIP_MAGIC else magic):
        raise _refuse(f"{path.name} is not a {'numpy array' if magic == NPY_MAGIC else 'torch tensor'} file")
    target = staging / ".kokoro" / f"{name}.npy"
    try:
        if path.suffix == ".pt":
            target.parent.mkdir(parents=True, exist_ok=True)
            pt_to_npy(path, target)
        else:
            save_voicepack(load_voicepack(path), target)
    except VoicepackError as exc:
        raise _refuse(str(exc)) from None
    except ProviderError as exc:  # provider_unavailable without torch; a reader that ran out of time
        raise ServiceError(exc.code, str(exc)) from None
    return Voice("kokoro", name, ((target, f"kokoro/{name}.npy"),))


def kokoro_table(path: Path, staging: Path, limits: Limits) -> list[Voice]:
    """An NPZ of styles (``voices-v1.0.bin``): each voice lands as ``kokoro/<name>.npy``."""
    from providers.base import ProviderError
    from providers.kokoro.voices import load_table, save_voicepack

    if not _starts_with(path, ZIP_MAGIC):
        raise _refuse(f"{path.name} is not a Kokoro voices file (an NPZ)")
    check_npz(path, Limits(total_bytes=limits.total_bytes, member_bytes=2 * 1024 * 1024, members=limits.members,
                           ratio=limits.ratio, ratio_from=limits.ratio_from))
    try:
        table = load_table(path)
    except ProviderError as exc:
        raise _refuse(str(exc)) from None
    voices = []
    for name in sorted(table):
        _voice_name(name)
        target = staging / ".kokoro" / f"{name}.npy"
        save_voicepack(table[name], target)
        voices.append(Voice("kokoro", name, ((target, f"kokoro/{name}.npy"),)))
    if not voices:
        raise _refuse(f"{path.name} holds no voices")
    return voices


def rvc_voice(model: Path, index: Path | None, name: str) -> Voice:
    """``providers.rvc.validate``: the weights read without running the file's code, the network's
    shapes checked, the index read and its width matched to the model's features."""
    name = _voice_name(name, plain=True)
    if not _starts_with(model, ZIP_MAGIC, PICKLE_MAGIC):
        raise _refuse(f"{model.name} is not a torch file (an RVC model is)")
    try:
        from providers.rvc.validate import validate
    except ImportError as exc:
        raise ServiceError("provider_unavailable", f"checking an RVC model needs packages that are not installed "
                                                   f"({exc.name}): pip install 'voice-agent[rvc]'") from None
    report = validate(model, index)
    if not report.ok:
        raise _refuse(f"{model.name} is not a usable RVC model: {'; '.join(report.problems)}")
    folder = f"{RVC_MODELS}/{name}"
    files = [(model, f"{folder}/{name}.pth")]
    if index is not None:
        files.append((index, f"{folder}/{name}.index"))
    return Voice("rvc", name, tuple(files), folder)

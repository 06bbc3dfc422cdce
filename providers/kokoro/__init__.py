"""Kokoro-82M (StyleTTS2 voicepacks) through ONNX Runtime: engine.py speaks, voices.py reads
voicepacks and blends, assets.py and prepare.py assemble and fold the model, voicepack_trainer.py
(with torch_graph.py, style_descent.py, similarity.py) trains a voicepack from the owner's samples.
"""

"""Kokoro (StyleTTS2 voicepacks, ONNX). Only its settings exist so far; see issue 4."""

"""RVC: a base engine (Piper or Kokoro) speaks, an RVC model converts the timbre to the owner's.

engine.py is the provider (no torch at import); runtime.py gathers the torch side: the model file
reader and validator (modelfile.py, validate.py), the synthesizer (synthesizer.py, layers.py,
generator.py), the content encoder (hubert.py, hubert_keys.py), pitch (pitch.py, rmvpe.py), the
FAISS index (index.py) and RVC WebUI's conversion pipeline (convert.py). trainer.py trains models.
"""

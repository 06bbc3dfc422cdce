"""GPU arbitration: what the GPUs hold, and who may use them when (speech, training, Ollama)."""

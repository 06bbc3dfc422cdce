"""Piper: fast neural TTS (piper-tts), the default provider and the fallback of all others."""

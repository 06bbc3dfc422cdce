"""What every provider (and the agent hosting them) shares: crash-safe files, WAV and PCM,
safe names. Plain functions, no state, nothing heavy imported."""

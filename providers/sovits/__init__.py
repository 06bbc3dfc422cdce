"""GPT-SoVITS through its own HTTP server. Only its settings exist so far; see issue 5."""

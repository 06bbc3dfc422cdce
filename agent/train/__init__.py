"""The train path: training jobs (Kokoro voicepacks, RVC models) run by a job runner."""

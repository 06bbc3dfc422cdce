"""The record path: conversation audio -> utterances (VAD) -> quality scores -> kept samples."""

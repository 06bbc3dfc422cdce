"""The bundled Piper voice's split (providers/piper/split.py), made once per test run and linked
into each test's models folder: a test home would otherwise make its own (1-3 s of CPU and 63 MB
of disk each, for a hundred homes). Tests of the making itself use voices of their own."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from providers.piper.split import prepared_split, split_folder


def seed_split(data_dir: Path) -> None:
    """Hard links of the bundled voice's split in ``data_dir`` (nothing where links cannot be made:
    the agent then makes its own)."""
    from providers.piper.engine import bundled_voice, open_session

    shared = Path(tempfile.gettempdir()) / f"voice-agent-tests-{os.getuid()}"
    if prepared_split(bundled_voice(), shared, open_session) is None:
        return
    target = split_folder(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    for path in split_folder(shared).iterdir():
        if path.name.startswith("en_US-joe-medium-") and not (target / path.name).exists():
            try:
                os.link(path, target / path.name)
            except OSError:
                return

"""The prepared Kokoro model, made once per test session and hard-linked into each test home.

Preparing (assemble, fold to float, time both variants) takes a while on a small machine; the
first test module that needs it does it for real, the others reuse the files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from providers.kokoro.config import KokoroSettings
from providers.kokoro.engine import KokoroProvider
from tests.contexts import home_context


def prepared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``out/models/kokoro`` of a home where the default settings were preloaded."""
    root = tmp_path_factory.getbasetemp() / "kokoro-prepared"
    models = root / "out" / "models" / "kokoro"
    if not (root / "ready").exists():
        ctx = home_context(root)
        provider = KokoroProvider()
        provider.runtime(KokoroSettings(voice="jf_alpha"), ctx)  # prepared now (a preload would prepare in the background)
        provider.close()
        (root / "ready").touch()
    return models


def install_models(models: Path, home: Path) -> None:
    """Give ``home`` the prepared files (hard links: no copy of 400 MB)."""
    target = home / "out" / "models" / "kokoro"
    target.mkdir(parents=True, exist_ok=True)
    for path in models.iterdir():
        try:
            os.link(path, target / path.name)
        except OSError:
            shutil.copy2(path, target / path.name)

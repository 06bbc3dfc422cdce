"""A voice name without a provider goes to the provider whose catalog has it (a Piper catalog name
to Piper when the profile speaks Kokoro, ``af_heart`` to Kokoro), a catalog alias becomes the
voice's name, and any other name stays with the profile's provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.voices.catalog import Catalog
from agent.voices.resolve import Named, resolve


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog({}, Path("/nonexistent"))


@pytest.mark.parametrize(("provider", "voice", "configured", "named"), [
    (None, "en_US-lessac-medium", "kokoro", Named("piper", "en_US-lessac-medium")),
    (None, "en_US-lessac-medium", "piper", Named(None, "en_US-lessac-medium")),
    (None, "en-us-lessac-medium", "kokoro", Named("piper", "en_US-lessac-medium")),  # wyoming-piper's old name
    (None, "en-us-lessac-medium", "piper", Named(None, "en_US-lessac-medium")),
    ("piper", "en-us-lessac-medium", "kokoro", Named("piper", "en_US-lessac-medium")),
    (None, "af_heart", "piper", Named("kokoro", "af_heart")),
    (None, "af_heart", "rvc", Named("kokoro", "af_heart")),
    (None, "amy", "kokoro", Named(None, "amy")),  # a trained or imported voice: the profile's provider says
    ("rvc", "en_US-lessac-medium", "piper", Named("rvc", "en_US-lessac-medium")),  # a named provider is kept
    (None, None, "kokoro", Named(None, None)),
])
def test_the_catalog_decides_the_provider(catalog: Catalog, provider: str | None, voice: str | None, configured: str,
                                          named: Named) -> None:
    assert resolve(provider, voice, configured, catalog) == named


def test_a_name_two_other_catalogs_have_stays_with_the_profiles_provider(monkeypatch: pytest.MonkeyPatch,
                                                                          catalog: Catalog) -> None:
    entry = catalog.find("piper", "en_US-lessac-medium")
    monkeypatch.setattr(catalog, "specs", lambda: {"piper": None, "kokoro": None})
    monkeypatch.setattr(catalog, "find", lambda provider, name: entry if (provider, name) in {("piper", "both"), ("kokoro", "both")} else None)
    assert resolve(None, "both", "rvc", catalog) == Named(None, "both")

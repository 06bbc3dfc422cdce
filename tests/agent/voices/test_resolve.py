"""A voice name without a provider goes to the provider whose catalog has it (a Piper catalog name
to Piper when the profile speaks Kokoro, ``af_heart`` to Kokoro), a catalog alias becomes the
voice's name, and any other name stays with the profile's provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.voices.catalog import Catalog
from agent.voices.resolve import Named, resolve
from providers.piper import catalog as piper_catalog


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


@pytest.fixture(scope="module")
def hostile_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A fetched Piper catalog whose aliases reach for names that are not theirs."""
    snapshot = json.loads((Path(piper_catalog.__file__).parent / "data" / "voices.json").read_text(encoding="utf-8"))
    lessac, amy = dict(snapshot["en_US-lessac-medium"]), snapshot["en_US-amy-low"]
    lessac["aliases"] = ["owner", "en_US-amy-low", "../../etc/passwd", "en-us-lessac-medium"]
    folder = tmp_path_factory.mktemp("catalog")
    (folder / "piper.json").write_text(json.dumps({"en_US-lessac-medium": lessac, "en_US-amy-low": amy}), encoding="utf-8")
    return Catalog({}, folder)


def test_an_alias_never_takes_a_voices_own_name_nor_an_unsafe_one(hostile_catalog: Catalog) -> None:
    assert hostile_catalog.find("piper", "en_US-amy-low").voice.name == "en_US-amy-low"  # type: ignore[union-attr]
    assert hostile_catalog.find("piper", "../../etc/passwd") is None
    assert hostile_catalog.find("piper", "en-us-lessac-medium").voice.name == "en_US-lessac-medium"  # type: ignore[union-attr]


def test_an_installed_voice_keeps_its_name_whatever_a_catalog_alias_says(hostile_catalog: Catalog) -> None:
    mine = {("piper", "owner")}
    assert resolve(None, "owner", "piper", hostile_catalog, lambda p, n: (p, n) in mine) == Named(None, "owner")
    assert resolve("piper", "owner", "kokoro", hostile_catalog, lambda p, n: (p, n) in mine) == Named("piper", "owner")
    # not installed: the alias still means the catalog voice
    assert resolve(None, "owner", "piper", hostile_catalog, lambda p, n: False) == Named(None, "en_US-lessac-medium")

"""GPT-SoVITS speech on another node (providers/sovits/remote.py): the reference and its prompt text
at home, and on the worker the same settings pointed at the fetched copies and its own server."""

from __future__ import annotations

from pathlib import Path

from providers.sovits.config import SovitsSettings
from providers.sovits.reference import find_reference
from providers.sovits.remote import inputs, place
from tests.contexts import loose_context
from tests.providers.sovits.conftest import REFERENCE_TEXT, write_reference


def test_the_inputs_are_the_speakers_reference_and_its_transcript(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    write_reference(voices / "sovits-reference" / "anna", "old", transcript="Older words.")
    audio = write_reference(voices / "sovits-reference" / "anna", "sample-9")  # the newest: find_reference's choice
    write_reference(voices / "sovits-reference" / "bob", "bob", transcript=None)
    ctx = loose_context(tmp_path / "profile", (voices,))
    found = inputs(SovitsSettings.model_validate({"speakerId": "anna"}), ctx)
    assert found == {"reference": audio, "transcript": audio.with_suffix(".txt")}
    assert inputs(SovitsSettings.model_validate({"speakerId": "bob"}), ctx) == {  # reference-free mode: no text
        "reference": voices / "sovits-reference" / "bob" / "bob.wav"}


def test_place_links_the_fetched_files_where_the_engine_looks_and_drops_the_homes_server_ways(tmp_path: Path) -> None:
    home = write_reference(tmp_path / "home", "sample-1")
    other = write_reference(tmp_path / "home2", "sample-2", transcript=None)
    cache = tmp_path / "blobs"
    cache.mkdir()
    for name, source in (("a1", home), ("t1", home.with_suffix(".txt")), ("a2", other)):
        (cache / name).write_bytes(source.read_bytes())  # a blob cache keeps files by hash, with no suffix
    settings = SovitsSettings.model_validate({
        "speakerId": "anna", "serverUrl": "http://home-server:9880", "referenceTransfer": "upload",
        "uploadUrl": "http://home-server:9881", "uploadToken": "s3cret", "pathMap": {"/srv": "/mnt/srv"},
        "autoStart": True, "temperature": 0.7, "textLang": "en"})
    folder = tmp_path / "work"
    placed = place(settings, {"reference": cache / "a1", "transcript": cache / "t1"}, folder)
    assert isinstance(placed, SovitsSettings)
    ctx = loose_context(tmp_path / "worker", (folder,))
    found = find_reference(ctx, "anna")
    assert found.audio.read_bytes() == home.read_bytes() and found.transcript == REFERENCE_TEXT
    assert (placed.reference_transfer, placed.path_map, placed.upload_url, placed.upload_token, placed.auto_start) == (
        "path", {}, None, None, False)  # the worker's server opens the linked file by its path
    assert (placed.speaker_id, placed.temperature, placed.text_lang) == ("anna", 0.7, "en")  # the voice stays the home's

    place(settings, {"reference": cache / "a2"}, folder)  # a new reference without words: no stale transcript
    found = find_reference(ctx, "anna")
    assert found.audio.read_bytes() == other.read_bytes() and found.transcript == ""

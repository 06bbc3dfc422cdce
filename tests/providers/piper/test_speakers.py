"""A multi-speaker Piper voice's speaker picked by name (Home Assistant's ``voice.speaker``): the
name becomes the id of the voice's ``speaker_id_map``; an unknown name is ``speaker_not_found``
with the close names; a provider whose voices have one speaker refuses a speaker."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.base import ProviderContext
from providers.kokoro.config import KokoroSettings
from providers.piper.config import PiperSettings
from providers.piper.engine import PiperProvider, SpeakerNotFoundError
from tests.piper_duo import TONE, write_duo


@pytest.fixture(scope="module")
def duo(tmp_path_factory: pytest.TempPathFactory) -> tuple[PiperProvider, ProviderContext]:
    home = tmp_path_factory.mktemp("home")
    write_duo(home / "out" / "voices")
    ctx = ProviderContext(profile="default", profile_dir=home, voices_dirs=(home / "out" / "voices",), data_dir=home,
                          run_dir=home, home=home, samples_dir=home)
    return PiperProvider(), ctx


def samples(duo: tuple[PiperProvider, ProviderContext], settings: PiperSettings) -> int:
    provider, ctx = duo
    return sum(len(chunk.pcm) // 2 for chunk in provider.synthesize("Hi.", settings, ctx))


def test_a_speaker_name_is_the_id_its_voice_maps_it_to(duo: tuple[PiperProvider, ProviderContext]) -> None:
    base = PiperSettings(model="duo")
    assert samples(duo, base.with_speaker("alto")) == TONE  # id 0: one tone per run
    assert samples(duo, base.with_speaker("bass")) == 2 * TONE  # id 1: two
    assert samples(duo, base.updated(speaker_id=1).with_speaker("alto")) == TONE  # the name wins over the id


def test_an_unknown_speaker_is_refused_with_the_close_names(duo: tuple[PiperProvider, ProviderContext]) -> None:
    with pytest.raises(SpeakerNotFoundError, match=r"duo has no speaker 'bas'; did you mean bass\?") as raised:
        samples(duo, PiperSettings(model="duo").with_speaker("bas"))
    assert raised.value.code == "speaker_not_found"
    with pytest.raises(SpeakerNotFoundError, match=r"it has 2: alto, bass"):
        samples(duo, PiperSettings(model="duo").with_speaker("tenor"))


def test_a_one_speaker_voice_has_no_speaker_to_pick(duo: tuple[PiperProvider, ProviderContext]) -> None:
    with pytest.raises(SpeakerNotFoundError, match="en_US-joe-medium has one speaker; it has no speaker 'alto'"):
        samples(duo, PiperSettings().with_speaker("alto"))


def test_the_speaker_is_part_of_the_cache_key_and_not_an_id() -> None:
    keys = {PiperSettings(model="duo").with_speaker(name).cache_key() for name in ("alto", "bass", "1")}
    assert len(keys | {PiperSettings(model="duo").updated(speaker_id=1).cache_key()}) == 4


def test_a_provider_of_one_speaker_voices_refuses_a_speaker() -> None:
    with pytest.raises(ValueError, match="one speaker each; there is no speaker 'alto'"):
        KokoroSettings().with_speaker("alto")

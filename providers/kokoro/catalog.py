"""Kokoro's catalog: the 54 stock voices of Kokoro-82M (``voices/<name>.pt`` on Hugging Face).

No hashes are published, so a fetched voice is checked by content: a finite float32 (510, 1, 256)
tensor, loaded with ``weights_only=True``. It installs as ``kokoro/<name>.npy``, so speaking with
it needs no torch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from providers.catalog import CatalogFile, CatalogSpec, CatalogVoice

BASE_URL = "https://huggingface.co/hexgrad/Kokoro-82M/resolve/main/"
ATTRIBUTION = "https://huggingface.co/hexgrad/Kokoro-82M"
VOICE_LIMIT = 2_000_000  # a stock voice's .pt is about 0.5 MB (510 x 1 x 256 float32 and its pickle)
LANGUAGES = {"a": "en_US", "b": "en_GB", "e": "es_ES", "f": "fr_FR", "h": "hi_IN", "i": "it_IT", "j": "ja_JP",
             "p": "pt_BR", "z": "zh_CN"}
STOCK = (
    "af_heart af_alloy af_aoede af_bella af_jessica af_kore af_nicole af_nova af_river af_sarah af_sky am_adam am_echo "
    "am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa bf_alice bf_emma bf_isabella bf_lily bm_daniel "
    "bm_fable bm_george bm_lewis ef_dora em_alex em_santa ff_siwis hf_alpha hf_beta hm_omega hm_psi if_sara im_nicola "
    "jf_alpha jf_gongitsune jf_nezumi jf_tebukuro jm_kumo pf_dora pm_alex pm_santa zf_xiaobei zf_xiaoni zf_xiaoxiao "
    "zf_xiaoyi zm_yunjian zm_yunxi zm_yunxia zm_yunyang"
).split()


def load(path: Path | None = None) -> list[CatalogVoice]:
    """The stock voices (there is no catalog file to fetch: ``path`` is not used)."""
    return [
        CatalogVoice(
            provider="kokoro", name=name, language=LANGUAGES[name[0]], files=(CatalogFile(f"voices/{name}.pt", limit=VOICE_LIMIT),),
            attribution=ATTRIBUTION,
            description=f"Kokoro-82M, {LANGUAGES[name[0]]}, {'female' if name[1] == 'f' else 'male'}",
        )
        for name in STOCK
    ]


def install(voice: CatalogVoice, files: Mapping[str, Path], voices_dir: Path) -> list[Path]:
    """The style table, checked, saved as ``kokoro/<name>.npy`` atomically: the ``.pt`` is read in a
    process of its own (``providers.kokoro.convert``), so the agent never imports torch."""
    from providers.kokoro.convert import pt_to_npy

    (downloaded,) = files.values()
    target = voices_dir / "kokoro" / f"{voice.name}.npy"
    target.parent.mkdir(parents=True, exist_ok=True)
    pt_to_npy(downloaded, target)  # VoicepackError for anything but a finite (510, 1, 256) float table
    return [target]


CATALOG = CatalogSpec(base_url=BASE_URL, load=load, install=install)

"""GPT-SoVITS speech made on another node for a profile that lives here: the speaker's reference
audio and its transcript (the prompt text) go by hash; on the worker they are linked where
``find_reference`` looks, and the request goes to the worker's OWN GPT-SoVITS server, whose
address the worker gives (``VOICE_AGENT_SOVITS_URL``: ``RemoteSpec.own``), never the home's.
The worker's server runs on the worker's machine and opens the reference by its path there.
"""

from __future__ import annotations

from pathlib import Path

from providers.base import ProviderContext
from providers.common.files import link_now
from providers.settings_base import ProviderSettings
from providers.sovits.config import SovitsSettings
from providers.sovits.reference import FOLDER, find_reference

REFERENCE = "reference"
TRANSCRIPT = "transcript"
OWN = ("server_url",)  # the worker's own server (agent.env VOICE_AGENT_SOVITS_URL)


def inputs(settings: ProviderSettings, ctx: ProviderContext) -> dict[str, Path]:
    """role -> file: the ``reference`` audio, and its ``transcript`` when it has one."""
    assert isinstance(settings, SovitsSettings)
    reference = find_reference(ctx, settings.speaker_id)
    found = {REFERENCE: reference.audio}
    if reference.transcript and reference.text_file is not None:
        found[TRANSCRIPT] = reference.text_file
    return found


def place(settings: ProviderSettings, files: dict[str, Path], folder: Path) -> ProviderSettings:
    """``settings`` for the worker: the reference (and transcript) linked as
    ``folder/sovits-reference/<speaker>/<speaker>.wav|.txt``, sent to the server by that path.
    Only a WAV and a .txt are lent (agent/blobs/index.py KEPT), so the link's names say so.
    The home's way of reaching its own server (a path map, an upload receiver, starting it)
    means nothing here; the server's address is the worker's, put over these settings."""
    assert isinstance(settings, SovitsSettings)
    speaker = folder / FOLDER / settings.speaker_id
    speaker.mkdir(parents=True, exist_ok=True)
    link_now(files[REFERENCE], speaker / f"{settings.speaker_id}.wav")
    transcript = speaker / f"{settings.speaker_id}.txt"
    if TRANSCRIPT in files:
        link_now(files[TRANSCRIPT], transcript)
    else:
        transcript.unlink(missing_ok=True)
    return settings.updated(reference_transfer="path", path_map={}, upload_url=None, upload_token=None,
                            auto_start=False)

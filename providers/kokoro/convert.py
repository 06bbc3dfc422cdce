"""A Kokoro ``.pt`` voice (a torch tensor) made a ``.npy`` in a short-lived process of its own.

Kokoro's stock voices are published as ``.pt``; reading one needs torch, which costs the agent
about 270 MB and is not among the ``kokoro`` extra's packages. So the agent never imports it: a
download or an import runs ``python -m providers.kokoro.convert SOURCE TARGET``, which loads the
tensor with ``weights_only=True``, checks it (``check_style``) and writes the ``.npy`` atomically;
the daemon only ever reads ``.npy``. The child is bounded in time and address space."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from providers.base import ProviderError, ProviderUnavailableError
from providers.common.process import child_failure

TIMEOUT = 120.0  # seconds: importing torch takes a few, a 0.5 MB tensor none
MEMORY = 6 << 30  # bytes of address space: torch's import maps about 2 GB, a voice is 0.5 MB
NO_TORCH = 3  # the child's exit status when torch is not installed
BAD_VOICE = 2  # ... when the file is not a (510, 1, 256) float tensor
NO_TORCH_MESSAGE = "Kokoro .pt voices need torch: pip install 'voice-agent[record]'"


def _limit() -> None:  # pragma: no cover - runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def pt_to_npy(source: Path, target: Path, timeout: float = TIMEOUT) -> None:
    """``target`` (a ``.npy``) holds the checked style of ``source`` (a ``.pt``), or nothing:
    ``ProviderUnavailableError`` without torch, ``VoicepackError`` for a file that is no voice."""
    from providers.kokoro.voices import VoicepackError

    command = [sys.executable, "-m", "providers.kokoro.convert", str(source), str(target)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=_limit,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProviderError(f"reading Kokoro voice {source.name} took over {timeout:g} s") from None
    reason = child_failure(done.stderr, done.returncode)
    if done.returncode == NO_TORCH:
        raise ProviderUnavailableError(NO_TORCH_MESSAGE)
    if done.returncode == BAD_VOICE:
        raise VoicepackError(reason)
    if done.returncode != 0 or not target.is_file():
        raise ProviderError(f"reading Kokoro voice {source.name} failed: {reason}")


def read_pt(source: Path, timeout: float = TIMEOUT) -> np.ndarray:
    """The checked style of a hand-placed ``.pt`` voicepack, read by the child: the engine's
    process (the agent) never imports torch for it."""
    from providers.kokoro.voices import check_style

    with tempfile.TemporaryDirectory(prefix="kokoro-pt-") as folder:
        target = Path(folder) / f"{source.stem}.npy"
        pt_to_npy(source, target, timeout)
        return check_style(np.load(target, allow_pickle=False), f"voicepack {source}")


def main(argv: list[str]) -> int:
    """The child: SOURCE.pt TARGET.npy."""
    source, target = Path(argv[0]), Path(argv[1])
    try:
        import torch  # noqa: F401  (only here: this process ends when the voice is written)
    except ImportError:
        print(NO_TORCH_MESSAGE, file=sys.stderr)
        return NO_TORCH
    from providers.kokoro.voices import VoicepackError, load_voicepack, save_voicepack

    try:
        save_voicepack(load_voicepack(source), target)
    except VoicepackError as exc:
        print(exc, file=sys.stderr)
        return BAD_VOICE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

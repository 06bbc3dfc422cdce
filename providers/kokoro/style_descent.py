"""Gradient descent on a Kokoro style towards the owner's voice.

The style table has 256 numbers per row; a random walk over them (the public KVoiceWalk
approach) needs thousands of syntheses to get anywhere. Here the synthesis itself is
differentiated: Kokoro runs as a torch module (``torch_graph``), its audio goes through the
same Resemblyzer speaker encoder that scores the result, and Adam moves the style up the
gradient of the cosine similarity to the owner's voice and down that of the distance between
the pitch Kokoro predicts and the owner's (the similarity alone can rise while the voice stays
an octave off). Each step speaks one training sentence drawn at random, so the style learns the
voice, not a sentence.

The move is one 256-value offset added to every row of the starting voicepack (rows differ
only by the phoneme count they serve), measured in units of the stock voices' spread per value.
"""

from __future__ import annotations

import gc

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from providers.common.process import release_free_memory
from providers.kokoro.similarity import SYNTH_RATE, SpeakerEmbedder
from providers.kokoro.torch_graph import F0_CURVE, load_differentiable, recompute_in_segments

PITCH_WEIGHT = 1.0  # loss per squared octave between the predicted and the target pitch
# half of what was heard each check: the F0 follows the aim over the next steps, so the whole of it
# overshot (bench/kokoro_voicepack.py, Piper owner: heard -17 %, +22 %, -11 % at steps 40-60)
PITCH_AIM_GAIN = 0.5
MAX_PITCH_AIM = 0.5  # octaves: a correction larger than this is a check's misreading, not the decoder's
VOICED_HZ = 40.0  # predicted F0 below this is an unvoiced frame
# The graph in pieces recomputed in the backward pass: a step's peak is then the model, what passes
# between the pieces and one piece's activations, not all of them (bench/RESULTS.md, issue 24).
RECOMPUTE_SEGMENTS = 8


class DifferentiableSpeakerEmbedding:
    """Resemblyzer's utterance embedding with a gradient: resample, level, mel, partials, encoder.

    Follows ``resemblyzer.preprocess_wav`` + ``embed_utterance`` except for the silence trimming
    (Kokoro's sentences have little silence to trim)."""

    def __init__(self, embedder: SpeakerEmbedder) -> None:
        from resemblyzer import hparams

        from providers.common.librosa_loader import load_librosa

        librosa = load_librosa()
        self._encoder = embedder.encoder
        for parameter in self._encoder.parameters():
            parameter.requires_grad_(False)
        self._rate = hparams.sampling_rate
        self._hop = self._rate * hparams.mel_window_step // 1000
        self._n_fft = self._rate * hparams.mel_window_length // 1000
        self._window = torch.hann_window(self._n_fft)
        mel = librosa.filters.mel(sr=self._rate, n_fft=self._n_fft, n_mels=hparams.mel_n_channels)
        self._mel = torch.tensor(mel, dtype=torch.float32)
        self._level = 10 ** (hparams.audio_norm_target_dBFS / 20)

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        n = audio.shape[-1]
        m = n * self._rate // SYNTH_RATE
        wav = torch.fft.irfft(torch.fft.rfft(audio)[: m // 2 + 1], n=m) * (m / n)  # band-limited 24 -> 16 kHz
        rms = torch.sqrt(torch.mean(wav.detach() ** 2)) + 1e-9
        wav = wav * torch.clamp(self._level / rms, min=1.0)  # Resemblyzer raises quiet speech only
        wav_slices, mel_slices = self._encoder.compute_partial_slices(len(wav), 1.3, 0.75)
        if wav_slices[-1].stop > len(wav):
            wav = torch.nn.functional.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        spectrum = torch.stft(wav, self._n_fft, self._hop, self._n_fft, self._window, center=True,
                              pad_mode="constant", return_complex=True)
        mel = (self._mel @ spectrum.abs() ** 2).T
        partials = self._encoder(torch.stack([mel[s] for s in mel_slices]).to(self._encoder.device)).cpu()
        embedding = partials.mean(0)
        return embedding / embedding.norm()


@dataclass
class DescentState:
    """What a checkpoint needs to continue the descent exactly where it stopped."""

    offset: np.ndarray  # (256,) in units of the spread
    adam_mean: np.ndarray
    adam_square: np.ndarray
    adam_steps: int
    pitch_aim: float = 0.0  # octaves the pitch target is moved from the owner's, from what the checks heard


class StyleDescent:
    """Adam on a style offset, one training sentence per step."""

    def __init__(self, model_path: Path, base: np.ndarray, spread: np.ndarray, target: np.ndarray,
                 embedder: SpeakerEmbedder, learning_rate: float, target_pitch: float = 0.0,
                 segments: int = 0) -> None:
        self._model = load_differentiable(model_path, (F0_CURVE,))
        self._segments = segments  # cut at the first step, measured on its sentence
        gc.collect()  # the conversion's intermediate graphs (about 0.6 GB) go back to the system
        release_free_memory()
        self._target_octave = float(np.log2(target_pitch)) if target_pitch > 0 else None
        self._pitch_aim = 0.0
        self._embed = DifferentiableSpeakerEmbedding(embedder)
        self._base = torch.tensor(np.asarray(base, np.float32).reshape(-1, base.shape[-1]))
        self._spread = torch.tensor(np.asarray(spread, np.float32).reshape(-1, spread.shape[-1]).mean(0))
        self._target = torch.tensor(np.asarray(target, np.float32))
        self.offset = torch.zeros(self._base.shape[-1], requires_grad=True)
        self._adam = torch.optim.Adam([self.offset], lr=learning_rate)

    def step(self, tokens: list[int], seed: int, speed: float = 1.0) -> float:
        """One Adam step on ``tokens`` spoken with the current style; returns their similarity.

        ``seed`` fixes the graph's rounding-noise stand-in, so a resumed run repeats the steps."""
        row = self._base[min(len(tokens), len(self._base)) - 1]  # as kokoro-onnx picks it
        style = (row + self.offset * self._spread).unsqueeze(0)
        inputs = (torch.tensor([[0, *tokens, 0]]), style, torch.tensor([speed]))
        if self._segments:
            self._model = recompute_in_segments(self._model, (inputs[0], style.detach(), inputs[2]), self._segments)
            self._segments = 0
            gc.collect()
            release_free_memory()
        torch.manual_seed(seed)
        out = self._model(*inputs)
        audio, f0 = out[0], out[-1]  # exports with a durations output have it in between
        similarity = self._embed(audio.reshape(-1)) @ self._target
        loss = -similarity
        voiced = f0.reshape(-1)[f0.detach().reshape(-1) > VOICED_HZ]
        if self._target_octave is not None and len(voiced):
            loss = loss + PITCH_WEIGHT * (torch.log2(voiced).mean() - (self._target_octave + self._pitch_aim)) ** 2
        self._adam.zero_grad()
        loss.backward()
        self._adam.step()
        return float(similarity.detach())

    def aim_pitch(self, heard_octaves: float) -> None:
        """Move the pitch target by what a check heard: the decoder can make speech sound higher or
        lower than the F0 it is given (a Piper-owner run: predicted 89-91 Hz, heard 98-117 Hz against
        the owner's 87-88), so the F0 the steps aim at is corrected until the heard pitch is the owner's."""
        self._pitch_aim = float(np.clip(self._pitch_aim - PITCH_AIM_GAIN * heard_octaves, -MAX_PITCH_AIM, MAX_PITCH_AIM))

    def style(self) -> np.ndarray:
        """The current voicepack, (510, 1, 256)."""
        table = self._base + self.offset.detach() * self._spread
        return table.numpy().reshape(-1, 1, table.shape[-1]).astype(np.float32)

    def state(self) -> DescentState:
        adam = self._adam.state.get(self.offset, {})
        zeros = np.zeros(self.offset.shape, np.float32)
        return DescentState(
            offset=self.offset.detach().numpy().copy(),
            adam_mean=adam["exp_avg"].numpy().copy() if adam else zeros,
            adam_square=adam["exp_avg_sq"].numpy().copy() if adam else zeros,
            adam_steps=int(adam["step"]) if adam else 0,
            pitch_aim=self._pitch_aim,
        )

    def restore(self, state: DescentState) -> None:
        self._pitch_aim = float(state.pitch_aim)
        with torch.no_grad():
            self.offset.copy_(torch.from_numpy(np.asarray(state.offset, np.float32)))
        if state.adam_steps:
            self._adam.state[self.offset] = {
                "step": torch.tensor(float(state.adam_steps)),
                "exp_avg": torch.from_numpy(np.asarray(state.adam_mean, np.float32).copy()),
                "exp_avg_sq": torch.from_numpy(np.asarray(state.adam_square, np.float32).copy()),
            }

"""One RVC training job: prepare (cached in the checkpoint folder), resume, train, checkpoint,
export. See ``trainer`` for the recipe. Imported only inside a training job (torch at the top)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from providers.common.files import file_tag
from providers.rvc.assets import ENCODER_NAMES, RMVPE_NAMES
from providers.rvc.modelfile import SAMPLE_RATES, ModelFileError, parse_config, safe_load
from providers.rvc.train_data import SHAPES, MelScale, collate, prepare
from providers.rvc.train_nets import Discriminators, TrainingSynthesizer, add_weight_norm, from_rvc_keys, to_rvc_keys
from providers.rvc.trainer import (
    CHECKPOINT_EVERY_S,
    RvcTrainParams,
    atomic_save,
    elapsed_since,
    find_asset,
    index_lists,
    model_config,
)
from providers.training import Progress, Report, ShouldStop, TrainingRefused, TrainResult, TrainSpec

log = logging.getLogger(__name__)

LOSS_WEIGHTS = {"mel": 45.0, "kl": 1.0, "fm": 2.0}
LR_DECAY = 0.999875


class TrainingRun:
    def __init__(self, spec: TrainSpec, params: RvcTrainParams, report: Report, should_stop: ShouldStop) -> None:
        self.spec, self.params, self.report, self.should_stop = spec, params, report, should_stop
        self.device = spec.device if spec.device == "cpu" or torch.cuda.is_available() else "cpu"
        self.rate = SAMPLE_RATES[params.sample_rate]
        self.shape = SHAPES[self.rate]
        self.checkpoint = spec.checkpoint_dir / "latest.pth"
        # training slice in frames: RVC's 12800/17280 samples; the tiny size uses less to stay quick
        self.frames = self.shape.segment // self.shape.hop if params.size == "standard" else 16

    # -- data -----------------------------------------------------------------------------
    def _data(self) -> list[dict[str, torch.Tensor]]:
        wavs = sorted(self.spec.dataset_dir.glob("*.wav"))
        if not wavs:
            raise TrainingRefused(f"no WAVs in {self.spec.dataset_dir}: export a dataset with `voice-agent samples export rvc`")
        tag = f"{self.params.sample_rate}:{self.params.version}:{self.params.f0_method}:" + "|".join(
            f"{p.name}:{file_tag(p)}" for p in wavs
        )
        cache = self.spec.checkpoint_dir / "prepared.pth"
        if cache.is_file():
            stored = safe_load(cache)
            if isinstance(stored, dict) and stored.get("tag") == tag:
                return list(stored["items"])
        self.report(Progress("preparing", 0, len(wavs), message=f"{len(wavs)} recordings"))
        from providers.rvc.hubert import load_hubert
        from providers.rvc.pitch import choose_method, rmvpe_loader

        encoder = find_asset(self.params.content_encoder_path, ENCODER_NAMES, self.spec)
        if encoder is None:
            raise TrainingRefused("RVC training needs a content encoder: put hubert_base.pt beside the models "
                             f"({self.spec.output_dir.parent}) or pass contentEncoderPath")
        hubert = load_hubert(encoder, self.device)
        rmvpe = find_asset(self.params.rmvpe_path, RMVPE_NAMES, self.spec) if self.params.f0_method == "rmvpe" else None
        tools = rmvpe_loader(rmvpe, self.device, "beside the models")
        method = choose_method(self.params.f0_method, tools)
        items = prepare(wavs, self.shape, hubert, self.params.version, tools, method, self.device)
        minutes = sum(len(it["audio"]) for it in items) / self.rate / 60
        if minutes < self.params.min_minutes:
            raise TrainingRefused(f"only {minutes:.1f} minutes of usable audio in {self.spec.dataset_dir}; "
                             f"at least {self.params.min_minutes:g} are needed")
        atomic_save({"tag": tag, "items": items}, cache)
        return items

    # -- networks ---------------------------------------------------------------------------
    def _networks(self) -> tuple[TrainingSynthesizer, Discriminators, list[Any]]:
        frames = self.frames
        config, problems = parse_config(model_config(self.params, self.rate, self.shape.spec_channels, frames))
        if config is None:
            raise ValueError("; ".join(problems))
        dim = 256 if self.params.version == "v1" else 768
        net = add_weight_norm(TrainingSynthesizer(config, dim, True, config.spk_embed_dim)).to(self.device)
        disc = Discriminators(width=1 if self.params.size == "standard" else 16).to(self.device)
        for path, module in ((self.params.pretrained_generator, net), (self.params.pretrained_discriminator, disc)):
            if path:
                self._load_base(Path(path), module)
        return net, disc, model_config(self.params, self.rate, self.shape.spec_channels, frames)

    def _load_base(self, path: Path, module: torch.nn.Module) -> None:
        data = safe_load(path)
        state = data.get("model", data) if isinstance(data, dict) else None
        if not isinstance(state, dict):
            raise ModelFileError(path, ["not a pretrained RVC base (expected a state dict or {'model': ...})"])
        own = module.state_dict()
        usable = {k: v for k, v in from_rvc_keys(state).items() if k in own and own[k].shape == v.shape}
        module.load_state_dict(usable, strict=False)
        log.info("started from %s (%d of %d tensors)", path.name, len(usable), len(own))

    # -- the job ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        torch.manual_seed(self.spec.seed)
        items = self._data()
        net, disc, config_list = self._networks()
        opt_g = torch.optim.AdamW(net.parameters(), self.params.learning_rate, betas=(0.8, 0.99), eps=1e-9)
        opt_d = torch.optim.AdamW(disc.parameters(), self.params.learning_rate, betas=(0.8, 0.99), eps=1e-9)
        epoch, losses = 0, {}
        if self.checkpoint.is_file():
            state = safe_load(self.checkpoint)
            net.load_state_dict(state["generator"])
            disc.load_state_dict(state["discriminator"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            epoch, losses = int(state["epoch"]), dict(state.get("losses", {}))
            random.setstate(_random_state(state))
            torch.set_rng_state(state["torch_rng"])
            log.info("resuming RVC training of %s at epoch %d", self.spec.speaker, epoch)
        mel = MelScale(self.shape, self.device)
        last_save = time.monotonic()
        while epoch < self.params.total_epochs:
            losses = self._epoch(items, net, disc, opt_g, opt_d, mel)
            epoch += 1
            for group in (*opt_g.param_groups, *opt_d.param_groups):
                group["lr"] = self.params.learning_rate * LR_DECAY**epoch
            self.report(Progress("training", epoch, self.params.total_epochs, loss=losses["total"],
                                 message=", ".join(f"{k} {v:.3f}" for k, v in losses.items())))
            stop = self.should_stop()
            if stop or epoch % self.params.save_every_epoch == 0 or elapsed_since(last_save) > CHECKPOINT_EVERY_S:
                self._save(net, disc, opt_g, opt_d, epoch, losses)
                last_save = time.monotonic()
            if stop and epoch < self.params.total_epochs:
                return TrainResult("stopped", [], {"epoch": float(epoch), **losses})
        self._save(net, disc, opt_g, opt_d, epoch, losses)
        self.report(Progress("exporting", epoch, self.params.total_epochs))
        outputs = self._export(net, config_list, items, epoch)
        return TrainResult("finished", outputs, {"epoch": float(epoch), **losses})

    def _epoch(self, items: list[dict[str, torch.Tensor]], net: TrainingSynthesizer, disc: Discriminators,
               opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, mel: MelScale) -> dict[str, float]:
        net.train()
        disc.train()
        order = list(range(len(items)))
        random.shuffle(order)
        frames, hop = self.frames, self.shape.hop
        totals: dict[str, list[float]] = {}
        for first in range(0, len(order), self.params.batch_size):
            batch = collate([items[i] for i in order[first : first + self.params.batch_size]], frames, hop)
            b = {k: v.to(self.device) for k, v in batch.items()}
            out = net(b["features"], b["lengths"], b["pitch"], b["pitchf"], b["spec"], b["lengths"],
                      torch.zeros(len(b["lengths"]), dtype=torch.long, device=self.device), frames)
            real = torch.stack([b["audio"][i, s * hop : (s + frames) * hop] for i, s in enumerate(out["starts"].tolist())])[:, None]
            fake = out["audio"]
            scores_r, _ = disc(real)
            scores_f, _ = disc(fake.detach())
            loss_d = sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for r, f in zip(scores_r, scores_f))
            opt_d.zero_grad()
            loss_d.backward()  # type: ignore[union-attr]
            opt_d.step()
            scores_r, maps_r = disc(real)
            scores_f, maps_f = disc(fake)
            parts = {
                "adv": sum(torch.mean((1 - f) ** 2) for f in scores_f),
                "fm": LOSS_WEIGHTS["fm"] * sum(torch.mean(torch.abs(r.detach() - f)) for mr, mf in zip(maps_r, maps_f) for r, f in zip(mr, mf)),
                "mel": LOSS_WEIGHTS["mel"] * F.l1_loss(mel(fake[:, 0]), mel(real[:, 0])),
                "kl": LOSS_WEIGHTS["kl"] * _kl(out),
            }
            loss_g = sum(parts.values())
            opt_g.zero_grad()
            loss_g.backward()  # type: ignore[union-attr]
            opt_g.step()
            for name, value in {**parts, "disc": loss_d, "total": loss_g}.items():
                totals.setdefault(name, []).append(float(torch.as_tensor(value).detach()))
        return {k: float(np.mean(v)) for k, v in totals.items()}

    def export_checkpoint(self) -> list[Path]:
        """Write the model and index from the newest checkpoint (e.g. to try a voice mid-training)."""
        if not self.checkpoint.is_file():
            raise ValueError(f"no checkpoint in {self.spec.checkpoint_dir}")
        items = self._data()
        net, _, config_list = self._networks()
        state = safe_load(self.checkpoint)
        net.load_state_dict(state["generator"])
        return self._export(net, config_list, items, int(state["epoch"]))

    def _save(self, net: torch.nn.Module, disc: torch.nn.Module, opt_g: Any, opt_d: Any, epoch: int, losses: dict[str, float]) -> None:
        atomic_save({"generator": net.state_dict(), "discriminator": disc.state_dict(), "opt_g": opt_g.state_dict(),
                     "opt_d": opt_d.state_dict(), "epoch": epoch, "losses": losses, "torch_rng": torch.get_rng_state(),
                     "random_state": _encode_random(random.getstate())}, self.checkpoint)
        self.report(Progress("training", epoch, self.params.total_epochs, loss=losses.get("total"), message="checkpoint saved",
                             checkpoint=True))

    def _export(self, net: TrainingSynthesizer, config_list: list[Any], items: list[dict[str, torch.Tensor]], epoch: int) -> list[Path]:
        import faiss

        out_dir = self.spec.output_dir
        weights = {k: v.detach().half().cpu() for k, v in to_rvc_keys(net.state_dict()).items() if not k.startswith("enc_q.")}
        model = out_dir / f"{self.spec.speaker}.pth"
        atomic_save({"weight": weights, "config": config_list, "info": f"{epoch}epoch", "sr": self.params.sample_rate,
                     "f0": 1, "version": self.params.version}, model)
        feats = np.concatenate([it["features"][::2].numpy() for it in items]).astype(np.float32)  # back to 50 frames/s
        np.random.default_rng(self.spec.seed).shuffle(feats)
        index = faiss.index_factory(feats.shape[1], f"IVF{index_lists(len(feats))},Flat")
        faiss.extract_index_ivf(index).nprobe = 1
        index.train(feats)
        for start in range(0, len(feats), 8192):
            index.add(feats[start : start + 8192])
        index_path = out_dir / f"{self.spec.speaker}.index"
        tmp = index_path.with_name(f".{index_path.name}.tmp")
        faiss.write_index(index, str(tmp))
        tmp.replace(index_path)
        return [model, index_path]


def _kl(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """KL between the posterior (through the flow) and the prior, per masked frame."""
    z_p, logs_q, m_p, logs_p, mask = out["z_p"], out["logs_q"], out["m_p"], out["logs_p"], out["mask"]
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)


def _encode_random(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _random_state(checkpoint: dict[str, Any]) -> tuple[Any, ...]:
    version, internal, gauss = checkpoint["random_state"]
    return (version, tuple(internal), gauss)

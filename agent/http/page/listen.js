// After a job: hear the voice it made saying a test sentence (POST /api/tts with `trained`: the
// profile's voice.json is untouched), beside one of the owner's kept samples, and make it the
// profile's voice with one click (config.set with the changes the job reports as `voice`).

import { ApiError, blobURL, command, sampleAudioPath, speech } from "./api.js";
import { $, say, status } from "./ui.js";

export class ListenBox {
  constructor(screen) {
    this.screen = screen;
    this.job = null;
    this.url = null;
    $("listen-new").addEventListener("click", () => this.playNew());
    $("listen-owner").addEventListener("click", () => this.playOwner());
    $("listen-use").addEventListener("click", () => this.use());
  }

  open(job) {
    this.job = job;
    $("listen-title").textContent = `The voice of job ${job.id} (${job.provider} · ${job.speaker})`;
    $("listen-box").hidden = false;
    $("listen-box").dataset.job = job.id;
    say($("listen-error"), "");
    status($("listen-status"), "");
    $("listen-box").scrollIntoView({ block: "nearest" });
  }

  close() {
    this.job = null;
    $("listen-box").hidden = true;
  }

  async playNew() {
    const text = $("listen-text").value.trim();
    if (!text) return say($("listen-error"), "Write a sentence for the new voice to say.");
    await this.play("new", async () => {
      const spoken = await speech(this.screen.profile, { text, trained: this.job.id });
      const note = spoken.fallback ? ` — it fell back to ${spoken.provider}: the new voice did not speak` : "";
      return { url: spoken.url, said: `The new voice (${spoken.provider})${note}.` };
    });
  }

  async playOwner() {
    await this.play("owner", async () => {
      const answer = await command(this.screen.profile, "samples.list", { order: "score", limit: 1 });
      const sample = answer.samples[0];
      if (!sample) throw new Error("No samples are kept in this profile any more.");
      const said = sample.transcript ? `You: “${sample.transcript}”` : "You (a kept sample).";
      return { url: await blobURL(sampleAudioPath(this.screen.profile, sample.id)), said };
    });
  }

  async play(which, fetchAudio) {
    say($("listen-error"), "");
    status($("listen-status"), "Fetching…", "busy");
    const audio = $("listen-audio");
    try {
      const { url, said } = await fetchAudio();
      if (this.url) URL.revokeObjectURL(this.url);
      this.url = url;
      audio.src = url;
      audio.dataset.playing = which;
      status($("listen-status"), said);
      await audio.play();
    } catch (error) {
      status($("listen-status"), "");
      say($("listen-error"), error instanceof ApiError ? error.advice : error.message);
    }
  }

  async use() {
    const job = this.job;
    say($("listen-error"), "");
    try {
      await command(this.screen.profile, "config.set", { changes: job.voice });
      status($("listen-status"), `The profile now speaks with the voice of job ${job.id}.`);
      $("listen-box").dataset.used = job.id;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say($("listen-error"), error.advice);
    }
  }
}

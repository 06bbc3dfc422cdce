// The Record card of the Samples tab: the owner reads one sentence per take. The microphone
// (getUserMedia, opened for the take alone) feeds a level meter (an AnalyserNode) and the take;
// Stop ends it (or MAX_SECONDS does), then listen back, Keep or Redo. Keep sends the take as a
// 16-bit WAV to the agent's `record` command with the sentence as its transcript; the answer's
// score, components and, when it was not kept, why, are shown as the agent words them (`say`).
// The sentences come from `record.prompts`: never one already kept.

import { ApiError, command } from "./api.js";
import { $, el, say, status } from "./ui.js";

const MAX_SECONDS = 20; // a take ends itself here (record.maxSeconds splits anything longer anyway)
const PROMPTS_AHEAD = 20;
const FLOOR_DB = -60; // the meter's empty end; its full end is 0 dBFS

export class RecordCard {
  constructor(screen) {
    this.screen = screen; // the samples screen: its profile, its list and readiness to refresh
    this.prompts = [];
    this.index = 0;
    this.take = null; // {wav: Blob, seconds}
    this.live = null; // the microphone while a take runs
    this.build();
  }

  build() {
    const card = $("record-card");
    this.node = {
      prompt: el("p", { class: "prompt", id: "record-prompt" }),
      progress: el("span", { class: "hint", id: "record-progress" }),
      start: el("button", { type: "button", id: "record-start", onclick: () => this.start() }, "● Record"),
      stop: el("button", { type: "button", id: "record-stop", hidden: true, onclick: () => this.stop() }, "■ Stop"),
      keep: el("button", { type: "button", id: "record-keep", hidden: true, onclick: () => this.keep() }, "Keep"),
      redo: el("button", { type: "button", class: "quiet", id: "record-redo", hidden: true, onclick: () => this.redo() }, "Redo"),
      skip: el("button", { type: "button", class: "quiet", id: "record-skip", onclick: () => this.skip() }, "Another sentence"),
      fill: el("div", { class: "fill" }),
      time: el("span", { class: "hint", id: "record-time", "data-seconds": "0" }, ""),
      audio: el("audio", { id: "record-audio", controls: true, hidden: true }),
      verdict: el("div", { class: "verdict", id: "record-verdict", hidden: true }),
      error: el("p", { class: "error", id: "record-error", hidden: true }),
      status: el("p", { class: "status", id: "record-status" }),
    };
    const n = this.node;
    card.replaceChildren(
      el("div", { class: "card-head" }, el("h2", {}, "Record"), n.progress),
      el("p", { class: "hint" }, "Read the sentence aloud in your normal voice, then press Stop. Listen, and Keep it or Redo it."),
      n.prompt,
      el("div", { class: "tools record-tools" }, n.start, n.stop, n.keep, n.redo, n.skip,
        el("div", { class: "meter", id: "record-meter", title: "microphone level" }, n.fill), n.time),
      n.audio, n.status, n.verdict, n.error);
    this.state("idle");
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      n.start.disabled = true;
      say(n.error, "The browser allows the microphone only on a secure page. Open this page as "
        + `http://127.0.0.1:${location.port || 80}/ on the agent's own machine (from another one through `
        + `an ssh -L tunnel), or through a TLS proxy (https://); ${location.origin} is not one.`);
    }
  }

  state(name) {
    const n = this.node;
    $("record-card").dataset.state = name; // idle, recording, recorded, sending
    n.start.hidden = name !== "idle";
    n.stop.hidden = name !== "recording";
    n.keep.hidden = n.redo.hidden = name !== "recorded" && name !== "sending";
    n.keep.disabled = n.redo.disabled = name === "sending";
    n.skip.disabled = name === "recording" || name === "sending";
    n.audio.hidden = !this.take || name === "recording";
  }

  async show(profile) {
    if (profile !== this.profile) this.reset();
    this.profile = profile;
    await this.loadPrompts();
  }

  reset() {
    this.abort();
    this.take = null;
    this.node.verdict.hidden = true;
    say(this.node.error, this.node.start.disabled ? this.node.error.textContent : "");
    this.state("idle");
  }

  async loadPrompts() {
    const answer = await command(this.profile, "record.prompts", { count: PROMPTS_AHEAD });
    this.prompts = answer.prompts;
    this.index = 0;
    this.node.progress.textContent = `${answer.read} of ${answer.total} sentences read`;
    this.showPrompt();
  }

  get prompt() {
    return this.prompts[this.index] || "";
  }

  showPrompt() {
    this.node.prompt.textContent = this.prompt || "Every sentence is read: thank you. Record more in your own words if you like.";
  }

  skip() {
    if (!this.prompts.length) return;
    this.index = (this.index + 1) % this.prompts.length;
    this.redo();
    this.showPrompt();
  }

  async start() {
    say(this.node.error, "");
    this.node.verdict.hidden = true;
    this.take = null;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      say(this.node.error, `No microphone: ${error.message || error.name}. Allow this page to use the microphone and try again.`);
      return;
    }
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    // ScriptProcessorNode: the samples as they come, with no module of its own to load (an
    // AudioWorklet would be one more file); a take is short and this page does little else.
    const processor = context.createScriptProcessor(4096, 1, 1);
    const live = { stream, context, chunks: [], frames: 0, rate: context.sampleRate, analyser };
    processor.onaudioprocess = (event) => {
      if (this.live !== live) return;
      const block = new Float32Array(event.inputBuffer.getChannelData(0));
      live.chunks.push(block);
      live.frames += block.length;
      const seconds = live.frames / live.rate;
      this.node.time.dataset.seconds = seconds.toFixed(2);
      this.node.time.textContent = `${seconds.toFixed(1)} s`;
      if (seconds >= MAX_SECONDS) this.stop();
    };
    source.connect(analyser);
    source.connect(processor);
    processor.connect(context.destination); // it runs only when connected; it outputs silence
    this.live = live;
    this.node.time.dataset.seconds = "0";
    this.node.time.textContent = "0.0 s";
    this.state("recording");
    this.meter(live);
  }

  meter(live) {
    const data = new Float32Array(live.analyser.fftSize);
    const draw = () => {
      if (this.live !== live) {
        this.node.fill.style.width = "0%";
        return;
      }
      live.analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (const x of data) sum += x * x;
      const db = 10 * Math.log10(sum / data.length + 1e-12);
      const share = Math.max(0, Math.min(1, (db - FLOOR_DB) / -FLOOR_DB));
      this.node.fill.style.width = `${Math.round(share * 100)}%`;
      $("record-meter").dataset.level = db > -6 ? "loud" : db < -45 ? "quiet" : "ok";
      requestAnimationFrame(draw);
    };
    requestAnimationFrame(draw);
  }

  abort() {
    const live = this.live;
    this.live = null;
    if (!live) return null;
    for (const track of live.stream.getTracks()) track.stop(); // the browser's microphone light goes off
    live.context.close();
    return live;
  }

  stop() {
    const live = this.abort();
    if (!live) return;
    const samples = new Float32Array(live.frames);
    let at = 0;
    for (const chunk of live.chunks) {
      samples.set(chunk, at);
      at += chunk.length;
    }
    this.take = { wav: wavBlob(samples, live.rate), seconds: live.frames / live.rate };
    if (this.node.audio.src) URL.revokeObjectURL(this.node.audio.src);
    this.node.audio.src = URL.createObjectURL(this.take.wav);
    this.state("recorded");
  }

  redo() {
    this.abort();
    this.take = null;
    this.node.verdict.hidden = true;
    this.node.time.textContent = "";
    this.state("idle");
  }

  async keep() {
    if (!this.take) return;
    const prompt = this.prompt;
    this.state("sending");
    status(this.node.status, "Scoring the take…", "quiet");
    say(this.node.error, "");
    try {
      const audio = await base64(this.take.wav);
      const answer = await command(this.profile, "record", { audio_b64: audio, transcript: prompt || undefined, source: "web" });
      status(this.node.status, "");
      this.verdict(answer);
      this.take = null;
      this.state("idle");
      await Promise.all([this.loadPrompts(), this.screen.list(), this.screen.readiness()]);
    } catch (error) {
      status(this.node.status, "");
      if (!(error instanceof ApiError)) throw error;
      say(this.node.error, `Not kept: ${error.data.say || error.message}.`);
      this.state("recorded");
    }
  }

  verdict(answer) {
    const box = this.node.verdict;
    const kept = answer.kept || [];
    const rejected = answer.rejected || [];
    box.dataset.kept = String(kept.length);
    box.dataset.mismatch = String(kept.some((k) => k.transcript_mismatch));
    const lines = [];
    for (const item of kept) {
      const weak = (item.say || []).filter((word) => word !== "other words than the sentence");
      lines.push(el("p", { class: "kept" }, `Kept: score ${Math.round(item.score)}`,
        weak.length ? ` (held back by: ${weak.join(", ")})` : "", "."));
      lines.push(components(item.components));
      if (item.transcript_mismatch) {
        lines.push(el("p", { class: "mismatch" }, "The words heard are not the sentence's, so this take is kept for "
          + `voices that need no transcript (RVC) but not for Kokoro or GPT-SoVITS. Heard: "${item.heard}".`));
      } else if (kept.length > 1 || item.transcript === undefined) {
        lines.push(el("p", { class: "hint" }, "The take was cut at its pauses, so its parts are kept without the sentence."));
      }
    }
    for (const item of rejected) {
      lines.push(el("p", { class: "rejected" }, `Not kept: ${(item.say || item.reasons).join(", ")} (score ${Math.round(item.score)}).`));
      lines.push(components(item.components));
    }
    box.replaceChildren(...lines);
    box.hidden = false;
  }
}

function components(values) {
  return el("div", { class: "chips" }, Object.entries(values || {}).map(([name, value]) =>
    el("span", { class: "chip", title: name }, `${name.replace(/_/g, " ")} ${Math.round(value)}`)));
}

/** Mono float samples as a 16-bit PCM WAV file. */
export function wavBlob(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, x < 0 ? x * 0x8000 : x * 0x7fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

async function base64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

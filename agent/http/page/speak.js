// Test voice: a sentence or two spoken over WS /api/tts-stream with the profile's settings; each
// sentence's WAV plays as it arrives (one <audio> element, fed in turn), then the summary of the
// done frame (who spoke, from the cache or not, a fallback and why, how fast).

import { socket } from "./api.js";
import { $, duration, el, say, status } from "./ui.js";

/** Seconds of audio in a 16-bit PCM WAV (from its header). */
async function wavSeconds(blob) {
  const view = new DataView(await blob.arrayBuffer());
  let offset = 12;
  let rate = 0;
  let bytesPerSecond = 0;
  while (offset + 8 <= view.byteLength) {
    const id = String.fromCharCode(...[0, 1, 2, 3].map((i) => view.getUint8(offset + i)));
    const size = view.getUint32(offset + 4, true);
    if (id === "fmt ") {
      rate = view.getUint32(offset + 12, true);
      bytesPerSecond = view.getUint32(offset + 16, true);
    }
    if (id === "data") return { seconds: bytesPerSecond ? size / bytesPerSecond : 0, rate };
    offset += 8 + size + (size % 2);
  }
  return { seconds: 0, rate };
}

// What to do about a fallback, by the reason's code (fallback_code in the done frame).
const FALLBACK_HINT = {
  voice_downloading: "the voice is being downloaded: a sentence after the download speaks with it",
  voice_not_found: "no catalog has this voice: pick another on the Settings screen",
  voice_unavailable: "its files could not be loaded: get or import the voice again",
  downloads_off: "downloads on demand are off: press “Get” next to the voice on the Settings screen",
  voice_download_failed: "the download failed: press “Get” on the Settings screen to try again",
};

/** The notice for an answer that fell back ("" when it did not): the code, the agent's own words,
 * and what to do when the page knows it. */
export function fallbackNotice(done) {
  if (!done.fallback) return "";
  const reason = String(done.fallback_reason || "");
  const code = done.fallback_code || (FALLBACK_HINT[reason] ? reason : "");
  const what = [code, reason !== code ? reason : ""].filter(Boolean).join(": ") || "the agent gave no reason";
  const hint = FALLBACK_HINT[code] ? ` (${FALLBACK_HINT[code]})` : "";
  return `Spoken by the fallback voice (${done.provider} ${done.voice}), because ${what}${hint}.`;
}

export class SpeakScreen {
  constructor(app) {
    this.app = app;
    this.queue = [];
    this.urls = [];
    this.rows = new Map(); // a sentence's blob: URL -> its row in the list
    this.played = 0;
    this.ws = null;
    const audio = $("speak-audio");
    audio.addEventListener("ended", () => this.playNext());
    $("speak-again").addEventListener("click", () => {
      this.queue = [...this.urls];
      this.playNext();
    });
    $("speak-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.speak();
    });
  }

  async show(profile) {
    this.profile = profile;
  }

  reset() {
    if (this.ws) this.ws.close();
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.queue = [];
    this.urls = [];
    this.rows.clear();
    this.played = 0;
    $("speak-again").hidden = true;
    const audio = $("speak-audio");
    audio.pause();
    audio.removeAttribute("src");
    audio.dataset.sentences = "0";
    $("speak-sentences").replaceChildren();
    $("speak-summary-card").hidden = true;
    say($("speak-error"), "");
    say($("speak-fallback"), "");
  }

  speak() {
    this.reset();
    const text = $("speak-text").value;
    const started = performance.now();
    const button = $("speak-go");
    button.disabled = true;
    status($("speak-status"), "Speaking…", "quiet");
    const ws = socket("/api/tts-stream");
    this.ws = ws;
    let count = 0;
    const finish = () => {
      button.disabled = false;
      if (this.ws === ws) this.ws = null;
      ws.close();
    };
    ws.onopen = () => ws.send(JSON.stringify({ text, profile: this.profile }));
    ws.onerror = () => {
      status($("speak-status"), "");
      say($("speak-error"), "The connection to the agent failed.");
      finish();
    };
    ws.onmessage = async (message) => {
      if (message.data instanceof Blob) {
        count += 1;
        const seq = count;
        const url = URL.createObjectURL(message.data);
        this.urls.push(url);
        this.queue.push(url);
        const arrived = Math.round(performance.now() - started);
        const row = el("li", {}, el("span", { class: "seq" }, `Sentence ${seq}`), el("span", { class: "hint" }, `arrived after ${arrived} ms`));
        this.rows.set(url, row);
        $("speak-sentences").append(row);
        wavSeconds(message.data).then(({ seconds }) => row.append(el("span", { class: "len" }, duration(seconds))));
        if ($("speak-audio").paused) this.playNext();
        return;
      }
      const done = JSON.parse(message.data);
      finish();
      status($("speak-status"), "");
      if (done.code) {
        say($("speak-error"), `${done.error} (${done.code})`);
        return;
      }
      this.summary(done);
      $("speak-again").hidden = this.urls.length === 0;
    };
  }

  playNext() {
    const audio = $("speak-audio");
    const url = this.queue.shift();
    for (const [each, row] of this.rows) row.classList.toggle("playing", each === url);
    if (!url) return;
    audio.src = url;
    this.played += 1;
    audio.dataset.sentences = String(this.played);
    audio.play().catch(() => { /* the browser wants a click first: the controls are there */ });
  }

  summary(done) {
    const facts = [
      ["Provider", done.provider], ["Voice", done.voice],
      ["From the cache", done.cached ? "yes" : "no"],
      ["Fallback", done.fallback ? `yes: ${done.fallback_reason || "no reason given"}` : "no"],
      ["Latency", `${Math.round(done.latency_ms)} ms`], ["First audio", `${Math.round(done.first_audio_ms)} ms`],
      ["Audio", duration(done.audio_seconds)], ["Sentences", done.chunks], ["Sample rate", `${done.sample_rate} Hz`],
    ];
    $("speak-summary").replaceChildren(...facts.map(([term, value]) => el("div", { class: "fact" },
      el("dt", {}, term), el("dd", { "data-fact": term.toLowerCase().replace(/ /g, "-") }, String(value)))));
    $("speak-summary-card").hidden = false;
    say($("speak-fallback"), fallbackNotice(done));
  }

  event() {}
}

// Recordings from files: dropped on the card or picked (WAV, FLAC, OGG Vorbis or Opus, MP3), each
// with an optional transcript, sent one at a time to the agent as a `record` request (the file's
// bytes as the body). The agent checks and decodes them, cuts long ones where the speaker pauses,
// scores each piece and keeps or refuses it: the card shows, per file, what was kept and what was
// refused and why. A transcript is stored only with a file that becomes one sample.

import { ApiError, commandWithAudio } from "./api.js";
import { $, duration, el, status } from "./ui.js";

const SUFFIXES = [".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"];
const TRANSCRIPT_CHARS = 500; // it travels in the query string; a sample holds a sentence or two

/** "0:07" for 7.2 s, "1:02" for 62 s: where a piece starts in its file. */
function clock(seconds) {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function size(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** What the agent's refusal means for a household member. */
function refusal(error) {
  const words = {
    no_speech: "no speech the agent could use",
    invalid_audio: "the agent cannot read it",
    payload_too_large: "the file is larger than the agent takes",
    busy: "the agent is still scoring other recordings; upload it again in a minute",
    record_disabled: "recording is switched off for this profile (Settings, Recording)",
  }[error.code];
  return words ? `${words}: ${error.message}` : error.message;
}

export class AudioUploads {
  constructor(screen) {
    this.screen = screen; // the samples screen: its profile, its list to refresh
    this.items = [];
    this.sending = false;
    const drop = $("upload-drop");
    for (const name of ["dragenter", "dragover"]) {
      drop.addEventListener(name, (event) => {
        event.preventDefault();
        drop.classList.add("over");
      });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      this.add(event.dataTransfer.files);
    });
    $("upload-files").addEventListener("change", (event) => {
      this.add(event.target.files);
      event.target.value = "";
    });
    $("upload-go").addEventListener("click", () => this.send());
    $("upload-clear").addEventListener("click", () => this.clear());
  }

  add(files) {
    for (const file of files) {
      const item = { file, state: "waiting" };
      item.transcript = el("input", { type: "text", maxlength: TRANSCRIPT_CHARS, placeholder: "what is said (optional)",
        "aria-label": `Transcript of ${file.name}`, spellcheck: "true" });
      item.result = el("div", { class: "result" });
      item.badge = el("span", { class: "badge" });
      item.remove = el("button", { type: "button", class: "quiet small", onclick: () => this.remove(item) }, "Remove");
      item.node = el("li", { "data-file": file.name },
        el("div", { class: "line" }, el("span", { class: "name" }, file.name),
          el("span", { class: "hint" }, size(file.size)), item.badge, item.remove),
        item.transcript, item.result);
      if (!SUFFIXES.some((suffix) => file.name.toLowerCase().endsWith(suffix))) {
        this.finish(item, "refused", `Not sent: ${file.name} is not a WAV, FLAC, OGG or MP3 file.`, [], "not sent");
      } else {
        this.mark(item, "waiting", "waiting");
      }
      this.items.push(item);
      $("upload-list").append(item.node);
    }
    this.update();
  }

  remove(item) {
    if (item.state === "sending") return;
    this.items = this.items.filter((other) => other !== item);
    item.node.remove();
    this.update();
  }

  clear() {
    for (const item of [...this.items]) this.remove(item);
    status($("upload-status"), "");
  }

  update() {
    const waiting = this.items.filter((item) => item.state === "waiting").length;
    const go = $("upload-go");
    go.disabled = this.sending || waiting === 0;
    go.textContent = waiting > 1 ? `Upload ${waiting} files` : "Upload";
    $("upload-clear").disabled = this.sending || this.items.length === 0;
  }

  mark(item, state, label, kind = "") {
    item.state = state;
    item.node.dataset.state = state;
    item.badge.textContent = label;
    item.badge.className = `badge ${kind}`;
  }

  finish(item, state, message, pieces = [], label = "") {
    const kind = state === "done" ? "good" : (state === "refused" ? "bad" : "warn");
    this.mark(item, state, label || (state === "done" ? "done" : (state === "refused" ? "refused" : "nothing kept")), kind);
    item.transcript.disabled = true;
    item.transcript.hidden = !item.transcript.value.trim();
    item.remove.textContent = "Dismiss";
    item.remove.title = "Take it off this list (what was kept stays in the samples)";
    item.result.replaceChildren(el("p", { class: "summary" }, message), ...pieces);
  }

  async send() {
    if (this.sending) return;
    this.sending = true;
    this.update();
    const profile = this.screen.profile;
    let kept = 0;
    try {
      for (const item of this.items.filter((candidate) => candidate.state === "waiting")) {
        this.mark(item, "sending", "scoring…", "busy");
        status($("upload-status"), `Sending ${item.file.name}; the agent cuts and scores it (a minute of audio takes a while)…`, "quiet");
        kept += await this.one(profile, item);
      }
    } finally {
      this.sending = false;
      this.update();
    }
    status($("upload-status"), `${plural(kept, "sample")} kept from these files.`);
    await this.screen.refresh();
  }

  async one(profile, item) {
    const transcript = item.transcript.value.trim();
    let answer;
    try {
      answer = await commandWithAudio(profile, "record", item.file, { source: "upload", transcript });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.finish(item, "refused", `Refused: ${refusal(error)}`);
      item.node.dataset.code = error.code;
      return 0;
    }
    this.show(item, answer, transcript);
    return answer.kept.length;
  }

  show(item, answer, transcript) {
    const pieces = [...answer.kept.map((piece) => ({ ...piece, kept: true })), ...answer.rejected]
      .sort((a, b) => (a.start ?? 0) - (b.start ?? 0));
    const rows = pieces.map((piece) => {
      const where = `${clock(piece.start ?? 0)}, ${duration(piece.duration)}`;
      const score = `score ${Math.round(piece.score)}`;
      return piece.kept
        ? el("li", { class: "kept", "data-sample": piece.id }, el("span", { class: "badge good" }, "kept"), ` ${where}, ${score}`)
        : el("li", { class: "refused" }, el("span", { class: "badge bad" }, "refused"), ` ${where}: ${piece.reasons.join("; ")}`);
    });
    const cut = answer.utterances > 1 ? `cut into ${answer.utterances} pieces where the speaker pauses; ` : "";
    const message = `${duration(answer.seconds)} of audio, ${cut}${answer.kept.length} kept, ${answer.rejected.length} refused.`;
    const notes = [];
    if (transcript && answer.utterances > 1) {
      notes.push(el("p", { class: "warn", "data-note": "transcript" }, "The transcript was not stored: the file became "
        + `${answer.utterances} pieces, and which of them said it is not known. Upload one sentence per file to keep its words.`));
    } else if (transcript && answer.kept.length === 1) {
      notes.push(el("p", { class: "hint", "data-note": "transcript" }, "Kept with its transcript."));
    }
    this.finish(item, answer.kept.length ? "done" : "nothing", message, [el("ul", { class: "pieces" }, rows), ...notes]);
  }
}

// The voice field of a provider's settings: a select of the voices the agent lists (installed
// ones and the catalog's, from the `voices` command), grouped by language and provider, the
// installed ones first, a downloadable one marked with its size; "other…" opens a text box for what
// a list cannot hold (a Kokoro blend, a path). A downloadable pick gets a "Get" button: the
// download runs on the agent (voices.download) and its progress comes back on the event stream.

import { bar, el, say } from "./ui.js";

export const OTHER = "\u0000other"; // the select's value for "type it yourself": no voice is named so
const names = new Intl.DisplayNames(["en"], { type: "language", languageDisplay: "standard" });

/** "en_US" -> "English (United States)" as the browser names it; the code itself when it cannot. */
export function languageName(code) {
  if (!code) return "Other languages";
  try {
    const [language, region] = code.split("_");
    const full = names.of(region ? `${language}-${region}` : language);
    return full && full !== code ? full : code;
  } catch {
    return code;
  }
}

/** 63_201_000 -> "63 MB", 523_000 -> "0.5 MB". */
export function megabytes(bytes) {
  const mb = (bytes || 0) / 1_000_000;
  return mb >= 10 ? `${Math.round(mb)} MB` : `${mb.toFixed(1)} MB`;
}

/** " (63 MB)", or nothing where the catalog publishes no size (Kokoro's voices): never "0.0 MB". */
function sized(bytes) {
  return bytes ? ` (${megabytes(bytes)})` : "";
}

function label(voice) {
  const bits = [voice.name];
  if (voice.quality) bits.push(voice.quality.replace("_", " "));
  if (voice.speakers > 1) bits.push(`${voice.speakers} speakers`);
  if (!voice.installed) bits.push(voice.size ? `⬇ ${megabytes(voice.size)}` : "⬇");
  return bits.join(" · ");
}

/** The provider's voices in groups: one per language, the groups with an installed voice first,
 * then by the language's name; in each group the installed voices first, then by name. */
export function groups(voices) {
  const byLanguage = new Map();
  for (const voice of voices) {
    const key = voice.language || "";
    if (!byLanguage.has(key)) byLanguage.set(key, []);
    byLanguage.get(key).push(voice);
  }
  const listed = [...byLanguage].map(([code, members]) => ({
    code, name: languageName(code), installed: members.some((v) => v.installed),
    voices: members.sort((a, b) => Number(b.installed) - Number(a.installed) || a.name.localeCompare(b.name)),
  }));
  return listed.sort((a, b) => Number(b.installed) - Number(a.installed) || a.name.localeCompare(b.name));
}

export class VoicePicker {
  /** `get(name)` asks the agent to download a catalog voice (a promise of the command's answer). */
  constructor({ id, provider, value, voices, get }) {
    this.provider = provider;
    this.get = get;
    this.voices = voices.filter((v) => v.provider === provider);
    this.select = el("select", { id, "aria-describedby": `${id}-note` });
    this.other = el("input", { type: "text", class: "other", spellcheck: "false", "aria-label": "Voice name or path", placeholder: "a name, a blend or a path" });
    this.button = el("button", { type: "button", class: "quiet get", onclick: () => this.download() }, "Get");
    this.note = el("span", { class: "hint", id: `${id}-note`, "aria-live": "polite" });
    this.progress = el("div", { class: "download", hidden: true });
    this.element = el("div", { class: "voice-picker", "data-provider": provider },
      el("div", { class: "line" }, this.select, this.button), this.other, this.progress, this.note);
    this.select.addEventListener("change", () => this.changed(true));
    this.fill(value);
  }

  /** The options, with `value` chosen (under "other…" when the list does not hold it). */
  fill(value) {
    const options = groups(this.voices).map((group) => el("optgroup", { label: `${group.name} · ${this.provider}` },
      ...group.voices.map((voice) => el("option", {
        value: voice.name, "data-installed": String(Boolean(voice.installed)), "data-size": voice.size || 0,
      }, label(voice)))));
    this.select.replaceChildren(...options, el("option", { value: OTHER }, "other… (type a name or path)"));
    const listed = this.voices.some((v) => v.name === value);
    this.select.value = listed ? value : OTHER;
    this.other.value = listed ? "" : (value ?? "");
    this.changed(false);
  }

  /** A new listing (after an upload): the options again, the pick kept. */
  setVoices(voices) {
    const chosen = this.read();
    this.voices = voices.filter((v) => v.provider === this.provider);
    this.fill(chosen);
  }

  read() {
    return this.select.value === OTHER ? this.other.value : this.select.value;
  }

  /** The picked voice's listing entry; null for "other…". */
  picked() {
    return this.voices.find((v) => v.name === this.select.value) || null;
  }

  changed(byHand) {
    const other = this.select.value === OTHER;
    this.other.hidden = !other;
    if (other && byHand) this.other.focus();
    const voice = this.picked();
    const downloadable = Boolean(voice && !voice.installed);
    this.button.hidden = !downloadable;
    if (downloadable) this.button.setAttribute("aria-label", `Get ${voice.name}${sized(voice.size)}`);
    if (this.busy) return;
    delete this.note.dataset.kind;
    say(this.note, downloadable ? `Not installed: “Get” downloads it${sized(voice.size)}, or the agent fetches it when it first speaks with it.` : "");
  }

  set disabled(value) {
    for (const node of [this.select, this.other, this.button]) node.disabled = value;
  }

  async download() {
    const voice = this.picked();
    if (!voice || voice.installed || this.busy) return;
    this.busy = voice.name;
    this.button.disabled = true;
    this.element.dataset.download = "started";
    this.show(0, voice.size, "Starting…");
    try {
      const answer = await this.get(voice.name);
      if ((answer.installed || []).some((v) => v.name === voice.name)) this.installed(voice.name);
    } catch (error) {
      if (this.busy === voice.name) this.failed(voice.name, error.code, error.message);
    }
  }

  /** A `voices.download.*` event of this provider (any voice: the CLI or another page may have started it). */
  event(type, data) {
    const voice = this.voices.find((v) => v.name === data.name);
    if (!voice) return;
    if (type === "voices.download.started" || type === "voices.download.progress") {
      this.busy = data.name;
      this.element.dataset.download = type.split(".").pop();
      this.show(data.done || 0, data.total || voice.size, null, data.name);
    } else if (type === "voices.download.finished") {
      this.installed(data.name);
    } else if (type === "voices.download.failed") {
      this.failed(data.name, data.code, data.message);
    }
  }

  show(done, total, text, name = this.busy) {
    const share = total ? done / total : 0;
    const words = text || `${name}: ${megabytes(done)} of ${megabytes(total)}`;
    this.progress.replaceChildren(bar(share, words, "busy"));
    this.progress.hidden = false;
    delete this.note.dataset.kind;
    say(this.note, "");
  }

  installed(name) {
    const voice = this.voices.find((v) => v.name === name);
    if (!voice || (voice.installed && this.busy !== name)) return;
    voice.installed = true;
    const chosen = this.read();
    this.busy = null;
    this.element.dataset.download = "finished";
    this.progress.replaceChildren(bar(1, `${name}: installed`, "good"));
    this.button.disabled = false;
    this.fill(chosen);
    say(this.note, `${name} is installed: Save to use it.`);
  }

  failed(name, code, message) {
    if (this.busy && this.busy !== name) return;
    this.busy = null;
    this.element.dataset.download = "failed";
    this.progress.hidden = true;
    this.button.disabled = false;
    say(this.note, `${name} was not downloaded: ${message || "the agent gave no reason"}${code ? ` (${code})` : ""}`);
    this.note.dataset.kind = "error";
  }

  /** What Save should tell about `value`: "" when it is an installed voice. */
  warning(value) {
    const voice = this.voices.find((v) => v.name === value);
    if (voice?.installed) return "";
    if (voice) {
      return `${value} is not installed yet: until it is (press “Get”, or the agent fetches it when it first speaks), `
        + "this profile is answered by the fallback voice, and the answer says why (voice_downloading).";
    }
    return `${value} is not a voice the agent lists (installed or in a catalog): if it cannot load it, this profile `
      + "is answered by the fallback voice, and the answer says why.";
  }
}

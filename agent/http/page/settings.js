// Voice settings: the provider and each provider's section of voice.json, as inputs made from
// the schema the agent sends (config.schema), saved with config.set; each provider's voice as a
// picker of the voices the agent lists (voices.js), a voice file uploaded (upload.js); the
// GPT-SoVITS server.

import { ApiError, command } from "./api.js";
import { SchemaForm, describe, humanize } from "./form.js";
import { $, el, say, status } from "./ui.js";
import { VoiceUpload } from "./upload.js";
import { VoicePicker } from "./voices.js";

const MORE = ["cache", "record", "train"]; // voice.json's other sections ("access" only changes in the file)

export class SettingsScreen {
  constructor(app) {
    this.app = app;
    this.schema = null;
    this.form = null;
    this.saving = null; // a change being saved: {saved, applied}
    this.pickers = {}; // provider -> its voice field's VoicePicker
    this.upload = new VoiceUpload(this);
    $("settings-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    $("settings-revert").addEventListener("click", () => this.show(this.profile));
    $("sovits-start").addEventListener("click", () => this.sovits("sovits.start", { wait: false }));
    $("sovits-stop").addEventListener("click", () => this.sovits("sovits.stop"));
    $("sovits-refresh").addEventListener("click", () => this.sovitsStatus());
  }

  async show(profile) {
    this.profile = profile;
    this.schema ??= await command(profile, "config.schema");
    const [answer, voices] = await Promise.all([command(profile, "config"), this.voices()]);
    this.build(answer.config, voices);
    say($("settings-error"), answer.error ? `voice.json has a problem, the last good settings are in force: ${answer.error}` : "");
    status($("settings-status"), "");
    this.warn(answer.config);
    this.upload.reset();
    await this.sovitsStatus();
  }

  /** Every voice the agent lists: installed ones and the catalogs' (marked installed: false). */
  async voices() {
    try {
      return (await command(this.profile, "voices", { catalog: true })).voices || [];
    } catch {
      return [];
    }
  }

  /** The listing again (a voice was uploaded): the pickers' options, the picks kept. */
  async refreshVoices() {
    const voices = await this.voices();
    for (const picker of Object.values(this.pickers)) picker.setVoices(voices);
  }

  picker(provider, voices) {
    return (id, value) => {
      const picker = new VoicePicker({
        id, provider, value, voices,
        get: (name) => command(this.profile, "voices.download", { names: [name], provider }),
      });
      this.pickers[provider] = picker;
      return { input: picker.element, control: picker.select, read: () => picker.read(), lock: () => { picker.disabled = true; } };
    };
  }

  /** Whether the voice in force for the chosen provider will be answered by the fallback. */
  warn(config) {
    const provider = config.tts.provider;
    const field = this.schema.providers[provider]?.voice_field;
    const picker = this.pickers[provider];
    const value = field && config.tts[provider] ? config.tts[provider][field] : "";
    say($("settings-voice-note"), picker && value ? picker.warning(String(value)) : "");
  }

  build(config, voices) {
    const root = this.schema.schema;
    const tts = root.$defs.TtsConfig;
    const form = new SchemaForm(root);
    this.form = form;
    const providers = this.schema.providers;
    const locked = this.schema.locked;

    const choose = form.row("provider", "tts.provider", describe(tts.properties.provider, root), config.tts.provider, false);
    $("settings-provider").replaceChildren(choose);

    const sections = [];
    this.pickers = {};
    for (const [name, info] of Object.entries(providers)) {
      const voiceField = `tts.${name}.${info.voice_field}`;
      const section = el("fieldset", { class: "provider", "data-provider": name },
        el("legend", {}, `Settings of ${name} `, el("code", { class: "key" }, `tts.${name}`)), el("p", { class: "hint" }, info.summary));
      form.render(section, tts.properties[name], config.tts[name], `tts.${name}`, { locked, pickers: { [voiceField]: this.picker(name, voices) } });
      const voiceRow = form.fields.get(voiceField);
      if (voiceRow) voiceRow.row.classList.add("voice");
      sections.push(section);
    }
    $("settings-sections").replaceChildren(...sections);

    const more = MORE.filter((key) => root.properties[key]).map((key) => {
      const box = el("fieldset", { class: "group" }, el("legend", {}, humanize(key)));
      form.render(box, root.properties[key], config[key], key, { locked });
      return box;
    });
    $("settings-more").replaceChildren(...more);

    const select = choose.querySelector("select");
    const showChosen = () => {
      const chosen = form.fields.get("tts.provider").read();
      for (const section of sections) section.hidden = section.dataset.provider !== chosen;
    };
    select.addEventListener("change", showChosen);
    showChosen();
  }

  async save() {
    const form = this.form;
    form.clearProblems();
    say($("settings-error"), "");
    const changes = form.changes();
    if (!Object.keys(changes).length) {
      status($("settings-status"), "Nothing changed.", "quiet");
      return;
    }
    $("settings-save").disabled = true;
    status($("settings-status"), "Saving…", "quiet");
    this.saving = { applied: false }; // config.reloaded (from the event stream) says the agent took it
    try {
      const answer = await command(this.profile, "config.set", { changes });
      this.build(answer.config, await this.voices());
      this.saving.saved = true;
      this.savedStatus();
      this.warn(answer.config);
    } catch (error) {
      this.saving = null;
      status($("settings-status"), "");
      if (!(error instanceof ApiError)) throw error;
      const left = form.showProblems(error.problems);
      const rest = left.map((p) => `${p.field}: ${p.message}`).join("; ");
      say($("settings-error"), error.problems.length ? (rest && `Also: ${rest}`) : error.message);
      if (error.problems.length) status($("settings-status"), "Not saved: see the fields marked in red.", "error");
    } finally {
      $("settings-save").disabled = false;
    }
  }

  savedStatus() {
    if (!this.saving?.saved) return;
    if (this.saving.applied) {
      status($("settings-status"), "Saved to voice.json; the agent uses it now.");
      this.saving = null;
    } else {
      status($("settings-status"), "Saved to voice.json; the agent is loading it…", "quiet");
    }
  }

  // -- the GPT-SoVITS server -----------------------------------------------------------------
  async sovits(name, body = {}) {
    say($("sovits-error"), "");
    status($("sovits-status"), "…", "quiet");
    try {
      const answer = await command(this.profile, name, body);
      this.showServer(answer.server);
      status($("sovits-status"), "");
    } catch (error) {
      status($("sovits-status"), "");
      say($("sovits-error"), error.message);
    }
    await this.sovitsLog();
  }

  async sovitsStatus() {
    try {
      this.showServer((await command(this.profile, "sovits.status")).server);
      say($("sovits-error"), "");
    } catch (error) {
      say($("sovits-error"), error.message);
    }
    await this.sovitsLog();
  }

  async sovitsLog() {
    try {
      const answer = await command(this.profile, "sovits.logs", { lines: 30 });
      $("sovits-log").textContent = answer.lines.length ? answer.lines.join("\n") : `(nothing in ${answer.log} yet)`;
    } catch (error) {
      $("sovits-log").textContent = error.message;
    }
  }

  showServer(server) {
    if (!server) return;
    const state = $("sovits-state");
    state.textContent = server.state;
    state.className = `badge ${server.state === "running" ? "good" : server.state === "failed" ? "bad" : ""}`;
    const bits = [server.url, server.pid ? `pid ${server.pid}` : "", server.restarts ? `${server.restarts} restarts` : "", server.error || ""];
    $("sovits-detail").textContent = bits.filter(Boolean).join(" · ");
  }

  event(event, profile) {
    if (event.kind !== "event" || event.profile !== this.profile) return;
    if (event.type.startsWith("voices.download.")) this.pickers[event.data.provider]?.event(event.type, event.data);
    if (event.type === "sovits.server") this.showServer(event.data);
    if (event.type === "config.reloaded" && this.saving) {
      this.saving.applied = true;
      this.savedStatus();
    }
    if (event.type === "config.invalid" && this.app.visible(this)) {
      say($("settings-error"), `voice.json was edited and has a problem: ${event.data.problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`);
    }
  }
}

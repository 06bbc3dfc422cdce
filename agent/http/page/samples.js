// Samples: the kept recordings (samples.list) with their scores, each playable (its WAV from the
// agent), deleted after a confirm (samples.delete), exported as a dataset (samples.export);
// readiness per provider as bars (samples.readiness, then live from the state); the report.

import { ApiError, blobURL, command, reportPath, sampleAudioPath } from "./api.js";
import { AudioUploads } from "./audio-uploads.js";
import { RecordCard } from "./record.js";
import { $, badge, bar, clearProblems, duration, el, say, showProblems, status, when } from "./ui.js";

const LIMIT = 500;

export class SamplesScreen {
  constructor(app) {
    this.app = app;
    this.samples = [];
    this.playing = null;
    this.reloading = null;
    $("samples-order").addEventListener("change", () => this.list());
    $("samples-all").addEventListener("change", (event) => {
      for (const box of document.querySelectorAll("#samples-rows input[type=checkbox]")) box.checked = event.target.checked;
      this.selectionChanged();
    });
    $("samples-delete").addEventListener("click", () => this.remove());
    $("export-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.export();
    });
    $("report-make").addEventListener("click", () => this.report());
    $("sample-audio").addEventListener("ended", () => this.stopped());
    this.recorder = new RecordCard(this);
    this.uploads = new AudioUploads(this);
  }

  /** The table and the bars again (after uploads: what they kept). */
  async refresh() {
    await Promise.all([this.list(), this.readiness()]);
  }

  async show(profile) {
    if (profile !== this.profile) {
      $("report-img").hidden = true;
      $("report-text").hidden = true;
      status($("export-status"), "");
    }
    this.profile = profile;
    const schema = await command(profile, "config.schema");
    const targets = Object.entries(schema.providers).filter(([, info]) => info.dataset).map(([name]) => name);
    const target = $("export-target");
    const chosen = target.value;
    target.replaceChildren(...targets.map((name) => el("option", { value: name }, name)));
    if (targets.includes(chosen)) target.value = chosen;
    await Promise.all([this.list(), this.readiness(), this.recorder.show(profile)]);
  }

  async list() {
    const answer = await command(this.profile, "samples.list", { order: $("samples-order").value, limit: LIMIT });
    this.samples = answer.samples;
    $("samples-rows").replaceChildren(...this.samples.map((sample) => this.row(sample)));
    $("samples-empty").hidden = this.samples.length > 0;
    $("samples-all").checked = false;
    this.selectionChanged();
    this.totals();
  }

  row(sample) {
    const box = el("input", { type: "checkbox", "data-sample": sample.id, "aria-label": `Select ${sample.id}`, onchange: () => this.selectionChanged() });
    const play = el("button", { type: "button", class: "icon play", title: "Play", "data-play": sample.id, onclick: () => this.play(sample.id, play) }, "▶");
    const similarity = sample.speaker_similarity === null ? "—" : sample.speaker_similarity.toFixed(2);
    const components = Object.entries(sample.components || {}).map(([name, value]) =>
      el("span", { class: "chip", title: name }, `${name.replace(/_/g, " ")} ${Math.round(value)}`));
    return el("tr", { "data-sample": sample.id },
      el("td", {}, box), el("td", {}, play),
      el("td", { title: sample.id }, when(sample.created)),
      el("td", { class: "score" }, bar(sample.score / 100, sample.score.toFixed(0), sample.score >= 70 ? "good" : "")),
      el("td", {}, duration(sample.duration)), el("td", {}, similarity),
      el("td", { class: "transcript", title: sample.transcript_mismatch || "" }, sample.transcript || el("span", { class: "hint" }, "no transcript"),
        sample.transcript_mismatch ? el("span", { class: "badge bad", "data-mismatch": "true" }, "other words") : ""),
      el("td", { class: "chips" }, components));
  }

  selected() {
    return [...document.querySelectorAll("#samples-rows input[type=checkbox]:checked")].map((box) => box.dataset.sample);
  }

  selectionChanged() {
    const count = this.selected().length;
    const button = $("samples-delete");
    button.disabled = count === 0;
    button.textContent = count ? `Delete ${count} selected` : "Delete selected";
  }

  totals() {
    const state = this.app.states[this.profile] || {};
    const count = state.samples ?? this.samples.length;
    const minutes = state.sample_minutes ?? this.samples.reduce((sum, s) => sum + s.duration, 0) / 60;
    $("samples-totals").textContent = `${count} samples kept, ${Number(minutes).toFixed(1)} minutes of the owner's voice.`;
  }

  async readiness() {
    const answer = await command(this.profile, "samples.readiness");
    this.showReadiness(answer.readiness);
  }

  showReadiness(readiness) {
    const rows = Object.entries(readiness || {}).map(([provider, state]) => {
      const label = state.ready ? "ready" : `${Math.round((state.progress || 0) * 100)} %`;
      return el("div", { class: "ready-row", "data-provider": provider },
        el("div", { class: "name" }, provider, state.ready ? badge("ready", "good") : ""),
        bar(state.ready ? 1 : state.progress, label, state.ready ? "good" : ""),
        el("div", { class: "hint" }, state.ready ? `${state.samples} sample${state.samples === 1 ? "" : "s"}, ${state.minutes} min` : state.missing.join("; ")));
    });
    $("readiness").replaceChildren(...rows);
  }

  async play(id, button) {
    const audio = $("sample-audio");
    if (this.playing === id) {
      audio.pause();
      this.stopped();
      return;
    }
    this.stopped();
    try {
      const url = await blobURL(sampleAudioPath(this.profile, id));
      audio.src = url;
      this.playing = id;
      button.textContent = "■";
      button.classList.add("on");
      await audio.play().catch(() => {});
    } catch (error) {
      say($("samples-error"), error.message);
    }
  }

  stopped() {
    this.playing = null;
    for (const button of document.querySelectorAll("#samples-rows button.play")) {
      button.textContent = "▶";
      button.classList.remove("on");
    }
  }

  async remove() {
    const ids = this.selected();
    if (!ids.length) return;
    const what = ids.length === 1 ? "this sample" : `these ${ids.length} samples`;
    if (!window.confirm(`Delete ${what}? The recordings are removed from the disk.`)) return;
    say($("samples-error"), "");
    let message = "";
    try {
      const answer = await command(this.profile, "samples.delete", { samples: ids });
      const count = answer.deleted.length;
      message = `Deleted ${count} sample${count === 1 ? "" : "s"}.`;
    } catch (error) {
      say($("samples-error"), error.message);
    }
    await Promise.all([this.list(), this.readiness()]);
    status($("samples-status"), message); // once the table shows it
  }

  async export() {
    const form = $("export-form");
    clearProblems(form);
    say($("export-error"), "");
    const body = { target: $("export-target").value, speaker: $("export-speaker").value };
    if ($("export-selected").checked) body.samples = this.selected();
    status($("export-status"), "Exporting…", "quiet");
    try {
      const answer = await command(this.profile, "samples.export", body);
      status($("export-status"), `Exported ${answer.exported.length} samples (${answer.minutes} min) to ${answer.target}.`);
    } catch (error) {
      status($("export-status"), "");
      if (!(error instanceof ApiError)) throw error;
      const left = showProblems(form, error.problems);
      if (!error.problems.length || left.length) say($("export-error"), error.message);
    }
  }

  async report() {
    say($("report-error"), "");
    const button = $("report-make");
    button.disabled = true;
    try {
      const answer = await command(this.profile, "samples.report");
      $("report-text").textContent = answer.text;
      $("report-text").hidden = false;
      const img = $("report-img");
      if (img.src) URL.revokeObjectURL(img.src);
      img.src = await blobURL(reportPath(this.profile));
      img.hidden = false;
    } catch (error) {
      say($("report-error"), error.message);
    } finally {
      button.disabled = false;
    }
  }

  event(event) {
    if (event.kind === "state" && event.key === this.profile) {
      if (event.data.readiness) this.showReadiness(event.data.readiness);
      if (this.app.visible(this)) this.totals();
    }
    if (event.kind === "event" && event.profile === this.profile && event.type === "sample.captured" && this.app.visible(this)) {
      clearTimeout(this.reloading);
      this.reloading = setTimeout(() => this.list(), 300);
    }
  }
}

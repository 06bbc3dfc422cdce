// Training: start a job (the trainer's parameters as inputs from its schema, train.trainers),
// follow the current one live (the profile's state document and training.* events from
// /api/events), cancel it, and look at past jobs and their logs (train.status, train.logs).
// Before Start: the samples, what each trainer lacks and how long the job would take here
// (train.plan); Start stays off, saying why, while the agent would refuse the job (train with
// check). After a job: Listen and Use this voice (listen.js).

import { ApiError, command } from "./api.js";
import { SchemaForm } from "./form.js";
import { ListenBox } from "./listen.js";
import { $, badge, bar, clearProblems, duration, el, say, showProblems, status, when } from "./ui.js";

const ACTIVE = ["queued", "running", "paused"];
// Refusals that no change of the form's values fixes: Start stays off and says why. Values the
// agent refuses (a bad speaker, a parameter out of range) are shown at their fields on Start.
const BLOCKING = ["not_ready", "duplicate", "busy", "unknown_trainer", "record_unavailable"];
const STATE_KIND = { running: "busy", queued: "", paused: "warn", finished: "good", failed: "bad", cancelled: "" };

function timeLeft(progress, active) {
  if (!active || typeof progress.eta_seconds !== "number") return "—";
  const basis = progress.eta_basis ? ` (${progress.eta_basis})` : "";
  return `about ${duration(progress.eta_seconds)}${basis}`;
}

function share(progress) {
  if (progress.state === "finished") return 1;
  return progress.total ? Math.min(1, (progress.step || 0) / progress.total) : 0;
}

export class TrainingScreen {
  constructor(app) {
    this.app = app;
    this.trainers = {};
    this.form = null;
    this.logJob = null;
    this.refreshing = null;
    this.logTimer = null;
    this.planning = null;
    this.planAsked = 0;
    this.listen = new ListenBox(this);
    $("train-provider").addEventListener("change", () => {
      this.params();
      this.plan();
    });
    $("train-speaker").addEventListener("input", () => this.planSoon());
    $("train-params").addEventListener("input", () => this.planSoon());
    $("train-params").addEventListener("change", () => this.planSoon());
    $("train-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
  }

  body(check = false) {
    const formNode = $("train-form");
    return {
      provider: $("train-provider").value, speaker: $("train-speaker").value,
      when: formNode.querySelector("input[name=when]:checked").value, ...this.form.changes(), ...(check ? { check: true } : {}),
    };
  }

  planSoon() {
    clearTimeout(this.planning);
    this.planning = setTimeout(() => this.plan(), 300);
  }

  // -- before Start: the dataset, each trainer's readiness, the estimate, and whether Start may go
  async plan() {
    const asked = ++this.planAsked;
    const body = this.body();
    let plan = null;
    let refusal = null;
    const [planned, checked] = await Promise.allSettled([
      command(this.profile, "train.plan", { provider: body.provider, speaker: body.speaker, params: body.params || {} }),
      command(this.profile, "train", this.body(true)),
    ]);
    if (asked !== this.planAsked) return; // a newer question was asked meanwhile
    if (planned.status === "fulfilled") plan = planned.value;
    if (checked.status === "rejected") {
      if (!(checked.reason instanceof ApiError)) throw checked.reason;
      if (BLOCKING.includes(checked.reason.code)) refusal = checked.reason;
    }
    this.showPlan(plan, planned.status === "rejected" ? planned.reason : null);
    const start = $("train-start");
    start.disabled = refusal !== null;
    const blocked = $("train-blocked");
    blocked.hidden = refusal === null;
    blocked.textContent = refusal ? `Start is off: ${refusal.advice}` : "";
    blocked.dataset.code = refusal ? refusal.code : "";
  }

  showPlan(plan, error) {
    const box = $("train-plan");
    if (!plan) {
      $("plan-dataset").textContent = error ? `No plan: ${error.advice || error.message}` : "";
      $("plan-trainers").replaceChildren();
      $("plan-estimate").textContent = "";
      box.dataset.source = "";
      return;
    }
    const d = plan.dataset;
    $("plan-dataset").textContent = `The samples: ${d.samples} kept, ${d.minutes.toFixed(1)} minutes; `
      + `${d.with_transcripts} with transcripts (${d.minutes_with_transcripts.toFixed(1)} minutes).`;
    $("plan-trainers").replaceChildren(...Object.entries(plan.trainers).map(([name, ready]) => el("li",
      { "data-trainer": name, class: ready.ready ? "ready" : "missing" },
      el("strong", {}, name), " ", badge(ready.ready ? "ready" : "not yet", ready.ready ? "good" : "warn"), " ",
      ready.ready ? (ready.note || "enough samples") : `needs ${ready.missing.join("; ")}`)));
    const estimate = plan.estimate;
    $("plan-estimate").replaceChildren(el("strong", {}, "Time: "), estimate.words);
    box.dataset.source = estimate.source;
    box.dataset.seconds = estimate.seconds === null ? "" : String(estimate.seconds);
  }

  async show(profile) {
    const changed = profile !== this.profile;
    this.profile = profile;
    if (changed) {
      $("job-log-box").hidden = true;
      this.logJob = null;
      status($("train-status"), "");
    }
    const answer = await command(profile, "train.trainers");
    const names = Object.keys(answer.trainers);
    const select = $("train-provider");
    const chosen = select.value;
    const same = JSON.stringify(answer.trainers) === JSON.stringify(this.trainers);
    this.trainers = answer.trainers;
    if (!same || !this.form) {
      select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
      if (names.includes(chosen)) select.value = chosen;
      this.params();
    }
    this.now((this.app.states[profile] || {}).training);
    await Promise.all([this.jobs(), this.plan()]);
  }

  params() {
    const name = $("train-provider").value;
    const schema = this.trainers[name]?.params || { properties: {} };
    this.form = new SchemaForm(schema);
    const box = el("div", { class: "grid" });
    this.form.render(box, schema, {}, "params");
    $("train-params").replaceChildren(box);
  }

  async start() {
    const formNode = $("train-form");
    clearProblems(formNode);
    this.form.clearProblems();
    say($("train-error"), "");
    const body = this.body();
    $("train-start").disabled = true;
    try {
      const answer = await command(this.profile, "train", body);
      status($("train-status"), `Job ${answer.job.id} submitted: its progress is below.`); // no state here: it would go stale
      await this.jobs();
    } catch (error) {
      status($("train-status"), "");
      if (!(error instanceof ApiError)) throw error;
      const left = showProblems(formNode, this.form.showProblems(error.problems));
      if (!error.problems.length || left.length) say($("train-error"), error.advice);
    } finally {
      await this.plan(); // Start is on again only where the agent would take another job
    }
  }

  // -- the current job, live ---------------------------------------------------------------
  now(progress) {
    const box = $("job-now");
    if (!progress || !progress.job) {
      box.replaceChildren(el("p", { class: "empty" }, "No training job yet."));
      return;
    }
    const active = ACTIVE.includes(progress.state);
    const percent = Math.round(share(progress) * 100);
    const step = progress.total ? `${progress.stage || "step"} ${progress.step ?? 0} of ${progress.total}` : (progress.stage || "");
    const facts = [
      ["Progress", step], ["Best", typeof progress.best === "number" ? progress.best.toPrecision(3) : (progress.best ?? "—")], ["Loss", progress.loss === null || progress.loss === undefined ? "—" : Number(progress.loss).toPrecision(3)],
      ["Time left", timeLeft(progress, active)],
    ];
    const cancel = active ? el("button", { type: "button", class: "danger", onclick: () => this.cancel(progress.job) }, "Cancel") : "";
    box.replaceChildren(
      el("div", { class: "card-head" },
        el("div", {}, el("strong", {}, `${progress.provider} · ${progress.speaker}`), " ",
          badge(progress.state, STATE_KIND[progress.state] || ""), el("span", { class: "hint job-id" }, progress.job)),
        cancel),
      bar(share(progress), `${percent} %`, progress.state === "finished" ? "good" : progress.state === "failed" ? "bad" : "busy"),
      el("dl", { class: "facts" }, ...facts.map(([term, value]) => el("div", { class: "fact" }, el("dt", {}, term), el("dd", {}, String(value))))),
      progress.waiting ? el("p", { class: "hint" }, `Waiting: ${progress.waiting}`) : "",
      progress.message ? el("p", { class: "hint" }, progress.message) : "",
    );
    box.dataset.state = progress.state;
    box.dataset.percent = String(percent);
    box.dataset.eta = active && typeof progress.eta_seconds === "number" ? String(progress.eta_seconds) : "";
    const cell = document.querySelector(`#jobs-rows tr[data-job="${CSS.escape(progress.job)}"] td.score`);
    if (cell) cell.replaceChildren(bar(share(progress), `${percent} %`, progress.state === "finished" ? "good" : ""));
  }

  async cancel(job) {
    say($("train-error"), "");
    try {
      await command(this.profile, "train.cancel", { job });
    } catch (error) {
      say($("train-error"), error.message);
    }
    await this.jobs();
  }

  // -- past jobs ---------------------------------------------------------------------------
  async jobs() {
    const answer = await command(this.profile, "train.status");
    const rows = answer.jobs.map((job) => {
      const progress = { ...job.progress, state: job.state };
      const buttons = [el("button", { type: "button", class: "quiet", onclick: () => this.log(job.id) }, "Log")];
      if (job.state === "finished" && job.voice && Object.keys(job.voice).length) {
        buttons.unshift(el("button", { type: "button", "data-listen": job.id, onclick: () => this.listen.open(job) }, "Listen"));
      }
      if (ACTIVE.includes(job.state)) buttons.push(el("button", { type: "button", class: "danger", onclick: () => this.cancel(job.id) }, "Cancel"));
      return el("tr", { "data-job": job.id },
        el("td", { class: "job-id" }, job.id), el("td", {}, `${job.provider} · ${job.speaker}`),
        el("td", {}, badge(job.state, STATE_KIND[job.state] || ""), job.error ? el("div", { class: "error small" }, job.error) : ""),
        el("td", { class: "score" }, bar(share(progress), `${Math.round(share(progress) * 100)} %`, job.state === "finished" ? "good" : "")),
        el("td", {}, when(job.started)), el("td", {}, when(job.finished)), el("td", { class: "buttons" }, buttons));
    });
    $("jobs-rows").replaceChildren(...rows);
    $("jobs-empty").hidden = rows.length > 0;
  }

  async log(job) {
    this.logJob = job;
    const answer = await command(this.profile, "train.logs", { job, lines: 200 });
    if (this.logJob !== job) return;
    $("job-log-title").textContent = `Log of ${job}`;
    $("job-log").textContent = answer.lines.length ? answer.lines.join("\n") : "(nothing logged)";
    $("job-log-box").hidden = false;
    const pre = $("job-log");
    pre.scrollTop = pre.scrollHeight;
  }

  event(event) {
    if (event.kind === "state" && event.key === this.profile && this.app.visible(this)) this.now(event.data.training);
    if (event.kind !== "event" || event.profile !== this.profile || !event.type.startsWith("training.") || !this.app.visible(this)) return;
    if (!["training.progress", "training.checkpoint"].includes(event.type)) {
      clearTimeout(this.refreshing);
      this.refreshing = setTimeout(() => {
        this.jobs();
        this.plan();
      }, 200);
    }
    if (this.logJob && event.data.job === this.logJob && !this.logTimer) {
      this.logTimer = setTimeout(() => {
        this.logTimer = null;
        this.log(this.logJob);
      }, 1000);
    }
  }
}

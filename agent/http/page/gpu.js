// The GPU: what NVML sees (cards, memory, processes: gpu.status, live from the "gpu" state
// document), and who holds it: the arbiter's reservations, the job that runs now and where. Below,
// the household's nodes as this agent hears them (GET /api/nodes): each one's GPU and free VRAM.

import { command, getJSON } from "./api.js";
import { $, badge, bar, el, when } from "./ui.js";

function gigabytes(mb) {
  return `${(mb / 1024).toFixed(1)} GB`;
}

export class GpuScreen {
  constructor(app) {
    this.app = app;
    this.refreshing = null;
    $("gpu-refresh").addEventListener("click", () => this.show(this.profile));
  }

  async show(profile) {
    this.profile = profile;
    const [status, nodes] = await Promise.all([command(profile, "gpu.status"), getJSON("/api/nodes")]);
    this.render(status);
    this.renderNodes(nodes);
  }

  renderNodes(found) {
    const rows = found.nodes.map((node) => {
      const gpu = node.gpus.length ? node.gpus.map((card) => card.name).join(", ") : "none";
      const state = node.online ? badge("online", "good") : badge(node.stale ? "not heard from" : "offline", "bad");
      return el("tr", { "data-node": node.node },
        el("td", {}, node.node === found.node ? `${node.node} (this one)` : node.node), el("td", {}, state),
        el("td", {}, gpu), el("td", {}, node.gpus.length ? gigabytes(node.free_vram_mb) : "-"),
        el("td", {}, node.worker ? badge("worker", "busy") : ""));
    });
    if (!rows.length) {
      $("gpu-nodes").replaceChildren(el("p", { class: "hint" }, "No node heard yet (the broker has not passed on their state)."));
      return;
    }
    $("gpu-nodes").replaceChildren(el("table", { class: "procs" },
      el("thead", {}, el("tr", {}, ...["Node", "", "GPU", "Free VRAM", ""].map((name) => el("th", {}, name)))),
      el("tbody", {}, ...rows)));
  }

  render(status) {
    const gpu = status.gpu;
    const training = status.training;
    if (!gpu.available) {
      $("gpu-cards").replaceChildren(el("div", { class: "gpu none" },
        el("div", { class: "card-head" }, el("strong", {}, "No GPU"), badge("CPU only")),
        el("p", { class: "hint" }, gpu.reason || "no NVIDIA GPU"),
        el("p", {}, "Speech and training run on the CPU; a CPU job runs at the lowest priority, so speech stays quick.")));
    } else {
      $("gpu-cards").replaceChildren(...gpu.gpus.map((card) => this.card(card, training)));
    }
    const users = [];
    for (const holder of status.holders) {
      users.push(el("li", {}, badge(holder.purpose, "busy"), ` needs ${gigabytes(holder.need_mb)}, since ${when(holder.since)}`));
    }
    if (training) {
      const where = training.device === "cuda" ? "on the GPU" : "on the CPU";
      users.push(el("li", { "data-job": training.job }, badge("training", training.device === "cuda" ? "busy" : ""),
        ` job ${training.job} (${training.provider} · ${training.speaker}, profile ${training.profile}) runs ${where}, process ${training.pid}`));
    }
    if (!users.length) users.push(el("li", { class: "empty" }, "Nobody: no training job runs and no provider holds the GPU."));
    $("gpu-users").replaceChildren(el("ul", { class: "users" }, ...users),
      el("p", { class: "hint" }, `Provider engines started in the agent: ${status.providers_loaded.join(", ") || "none yet"}.`));
  }

  card(card, training) {
    const used = card.used_mb / card.total_mb;
    const rows = (card.processes || []).map((p) => el("tr", {},
      el("td", {}, String(p.pid)), el("td", {}, p.name), el("td", {}, gigabytes(p.used_mb)),
      el("td", {}, training && training.pid === p.pid ? badge(`training ${training.provider}`, "busy") : "")));
    return el("div", { class: "gpu" },
      el("div", { class: "card-head" }, el("strong", {}, `GPU ${card.index}: ${card.name}`), el("span", { class: "hint" }, `${gigabytes(card.free_mb)} free`)),
      bar(used, `${gigabytes(card.used_mb)} of ${gigabytes(card.total_mb)} used`, used > 0.9 ? "bad" : "busy"),
      rows.length ? el("table", { class: "procs" }, el("thead", {}, el("tr", {}, el("th", {}, "Process"), el("th", {}, "Name"), el("th", {}, "Memory"), el("th", {}, ""))),
        el("tbody", {}, ...rows)) : el("p", { class: "hint" }, "No process uses it."));
  }

  event(event) {
    if (!this.app.visible(this)) return;
    const gpuChanged = event.kind === "state" && event.key === "gpu";
    const jobChanged = event.kind === "event" && /^training\.(started|resumed|paused|finished|failed|cancelled)$/.test(event.type);
    if (!gpuChanged && !jobChanged) return;
    clearTimeout(this.refreshing);
    this.refreshing = setTimeout(() => this.show(this.profile), 300);
  }
}

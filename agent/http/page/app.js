// The page's shell: the profile, the tabs (#/<profile>/<tab> in the address), the live events
// (one EventSource on /api/events for the profile), and the screens, each in its own module.

import * as api from "./api.js";
import { GpuScreen } from "./gpu.js";
import { SamplesScreen } from "./samples.js";
import { SettingsScreen } from "./settings.js";
import { SpeakScreen } from "./speak.js";
import { TrainingScreen } from "./training.js";
import { $, el, say } from "./ui.js";

const TABS = ["settings", "speak", "samples", "training", "gpu"];
const RETRY_FIRST = 1000; // ms before connecting the event stream again after the browser gave up on it
const RETRY_MAX = 30000; // the wait doubles up to this, and starts again from RETRY_FIRST once connected

class App {
  constructor() {
    this.screens = {
      settings: new SettingsScreen(this), speak: new SpeakScreen(this), samples: new SamplesScreen(this),
      training: new TrainingScreen(this), gpu: new GpuScreen(this),
    };
    this.profiles = [];
    this.profile = null;
    this.tab = null;
    this.stream = null;
    this.retry = RETRY_FIRST;
    this.reconnecting = null;
    this.states = {}; // the state documents by key: the profile's, and "gpu"
  }

  async start() {
    for (const link of document.querySelectorAll("#tabs a")) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        this.go(this.profile, link.dataset.tab);
      });
    }
    $("profile").addEventListener("change", (event) => this.go(event.target.value, this.tab));
    $("forget-token").addEventListener("click", () => {
      api.forgetToken();
      location.reload();
    });
    window.addEventListener("hashchange", () => this.route());
    try {
      const health = await api.getJSON("/api/health");
      this.profiles = health.profiles;
      if (health.gpu) this.states.gpu = health.gpu;
    } catch (error) {
      say($("banner"), `The agent does not answer: ${error.message}`);
      return;
    }
    $("forget-token").hidden = !api.token();
    $("profile").replaceChildren(...this.profiles.map((name) => el("option", { value: name }, name)));
    await this.route();
  }

  go(profile, tab) {
    location.hash = `#/${encodeURIComponent(profile)}/${tab}`;
  }

  async route() {
    const [, wantedProfile, wantedTab] = location.hash.split("/").map(decodeURIComponent);
    const profile = this.profiles.includes(wantedProfile) ? wantedProfile
      : (this.profiles.includes("default") ? "default" : this.profiles[0]);
    const tab = TABS.includes(wantedTab) ? wantedTab : "settings";
    if (!profile) {
      say($("banner"), "This agent has no profiles (directories under profiles/).");
      return;
    }
    if (profile !== this.profile) {
      this.profile = profile;
      $("profile").value = profile;
      this.connect(profile);
    }
    this.tab = tab;
    for (const link of document.querySelectorAll("#tabs a")) {
      link.classList.toggle("active", link.dataset.tab === tab);
      link.href = `#/${encodeURIComponent(profile)}/${link.dataset.tab}`;
    }
    for (const name of TABS) $(`screen-${name}`).hidden = name !== tab;
    const section = $(`screen-${tab}`);
    delete section.dataset.loaded;
    try {
      await this.screens[tab].show(profile);
      say($("banner"), "");
    } catch (error) {
      say($("banner"), error.message);
    }
    section.dataset.loaded = profile; // the screen shows this profile's data (tests wait for it)
  }

  connect(profile) {
    clearTimeout(this.reconnecting);
    if (this.stream) this.stream.close();
    const live = $("live");
    const stream = api.events(profile);
    this.stream = stream;
    stream.onopen = () => {
      this.retry = RETRY_FIRST;
      live.textContent = "live";
      live.dataset.on = "true";
    };
    stream.onerror = () => {
      live.textContent = "reconnecting";
      live.dataset.on = "false";
      // A dropped stream the browser connects again itself; an answer other than 200 (503 busy
      // past the agent's connection cap, 429 to a throttled token) closes it for good.
      if (stream.readyState !== EventSource.CLOSED || this.stream !== stream) return;
      const wait = this.retry;
      this.retry = Math.min(this.retry * 2, RETRY_MAX);
      this.reconnecting = setTimeout(() => this.connect(profile), wait);
    };
    stream.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.kind === "state") this.states[event.key] = event.data;
      for (const screen of Object.values(this.screens)) {
        try {
          screen.event(event, profile);
        } catch (error) {
          console.error("a screen failed on an event", event, error);
        }
      }
    };
  }

  visible(screen) {
    return this.screens[this.tab] === screen;
  }
}

const app = new App();
window.voiceAgent = app; // for a look from the browser's console
app.start();

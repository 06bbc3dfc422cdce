// A voice from a file: a Piper .onnx with its .onnx.json (or a zip/tar of them), a Kokoro
// voicepack or voices-v1.0.bin, an RVC model (a zip with a .pth and an .index) sent to the agent
// (POST /api/profiles/<profile>/voices/import, multipart), which checks it before it lands: for
// this profile or the whole household. The answer names what was installed, or why not.

import { ApiError, importVoice } from "./api.js";
import { $, say, status } from "./ui.js";

export class VoiceUpload {
  constructor(screen) {
    this.screen = screen; // the settings screen: its profile, and its pickers to refresh
    $("import-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  }

  reset() {
    status($("import-status"), "");
    say($("import-error"), "");
  }

  async send() {
    const [file] = $("import-file").files;
    this.reset();
    if (!file) {
      say($("import-error"), "Choose a file first.");
      return;
    }
    const form = new FormData(); // one file: a voice of several files comes as a zip or tar
    form.append("file", file, file.name);
    form.append("scope", $("import-scope").value);
    form.append("replace", String($("import-replace").checked));
    const button = $("import-go");
    button.disabled = true;
    status($("import-status"), `Sending ${file.name}…`, "quiet");
    try {
      const answer = await importVoice(this.screen.profile, form);
      const installed = (answer.installed || []).map((v) => `${v.provider} ${v.name}`);
      status($("import-status"), installed.length ? `Installed: ${installed.join(", ")}.` : "The agent installed nothing.",
        installed.length ? "ok" : "error");
      $("import-file").value = "";
      await this.screen.refreshVoices();
    } catch (error) {
      status($("import-status"), "");
      if (!(error instanceof ApiError)) throw error;
      say($("import-error"), `Not installed: ${error.message} (${error.code})`);
    } finally {
      button.disabled = false;
    }
  }
}

// Inputs made from a JSON schema (the agent's own pydantic models, sent by config.schema and
// train.trainers): a select for an enum, a checkbox for a boolean, a number input with the
// model's range, a text input, JSON for lists and maps, a fieldset for a nested model. The page
// checks nothing itself: what it sends, the agent validates, and a refusal's data.problems are
// shown next to the fields they name.

import { el } from "./ui.js";

const ACRONYMS = { url: "URL", id: "ID", api: "API", vad: "VAD", mb: "MB", dnsmos: "DNSMOS", gpu: "GPU", rvc: "RVC" };

/** "speakingRate" -> "Speaking rate", "serverUrl" -> "Server URL", "step_seconds" -> "Step seconds". */
export function humanize(key) {
  const words = key.replace(/_/g, " ").replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .split(/\s+/).filter(Boolean)
    .map((word) => ACRONYMS[word.toLowerCase()] || (/^[A-Z0-9]{2,}$/.test(word) ? word : word.toLowerCase()));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function deref(schema, root) {
  let found = schema;
  while (found && found.$ref) {
    const name = found.$ref.split("/").pop();
    found = { ...root.$defs[name], ...Object.fromEntries(Object.entries(found).filter(([k]) => k !== "$ref")) };
  }
  return found || {};
}

/** What kind of input a property needs. */
export function describe(schema, root) {
  const s = deref(schema, root);
  const options = (s.anyOf || []).map((o) => deref(o, root));
  const nullable = options.some((o) => o.type === "null");
  const rest = options.filter((o) => o.type !== "null");
  const one = rest.length === 1 ? { ...rest[0], description: s.description, default: s.default } : s;
  if (rest.length > 1) return { kind: "union", nullable, schema: s, options: rest };
  if (one.enum) return { kind: "enum", nullable, schema: one };
  if (one.const !== undefined) return { kind: "enum", nullable, schema: { ...one, enum: [one.const] } };
  if (one.type === "boolean") return { kind: "boolean", nullable, schema: one };
  if (one.type === "integer" || one.type === "number") return { kind: "number", nullable, schema: one };
  if (one.type === "object" && one.properties) return { kind: "object", nullable, schema: one };
  if (one.type === "object" || one.type === "array") return { kind: "json", nullable, schema: one };
  return { kind: "string", nullable, schema: one };
}

function rangeHint(s) {
  const low = s.minimum ?? s.exclusiveMinimum;
  const high = s.maximum ?? s.exclusiveMaximum;
  const lowText = low === undefined ? "" : (s.exclusiveMinimum !== undefined ? `> ${low}` : `${low}`);
  if (low !== undefined && high !== undefined) {
    return s.exclusiveMinimum !== undefined ? `${lowText}, ≤ ${high}` : `${low} – ${high}`;
  }
  if (low !== undefined) return s.exclusiveMinimum !== undefined ? lowText : `≥ ${low}`;
  if (high !== undefined) return `≤ ${high}`;
  return "";
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class SchemaForm {
  constructor(root) {
    this.root = root; // the schema whose $defs the $refs point into
    this.fields = new Map(); // dotted path -> {read, initial, row, error}
  }

  /** Inputs for each property of `schema` under `path`, holding `value`. */
  /** `pickers` maps a dotted path to a function (id, value) -> {input, control, read} that makes
   * that field's input instead (the voice picker: a select and more around it). */
  render(container, schema, value, path, { locked = [], lists = {}, skip = [], pickers = {} } = {}) {
    const s = deref(schema, this.root);
    for (const [key, property] of Object.entries(s.properties || {})) {
      if (skip.includes(key)) continue;
      const where = path ? `${path}.${key}` : key;
      const current = value && key in value ? value[key] : deref(property, this.root).default;
      const info = describe(property, this.root);
      if (info.kind === "object") {
        const box = el("fieldset", { class: "group", "data-field": where }, el("legend", {}, humanize(key)));
        container.append(box);
        this.render(box, info.schema, current || {}, where, { locked, lists, pickers });
        continue;
      }
      container.append(this.row(key, where, info, current, locked.includes(where), lists[where], pickers[where]));
    }
  }

  row(key, where, info, value, locked, list, picker) {
    const id = `f-${where.replace(/[^A-Za-z0-9]/g, "-")}`;
    const made = picker ? picker(id, value) : this.input(id, info, value, list);
    const { input, read } = made;
    const control = made.control || input; // what the label names, the tests find and a problem focuses
    control.dataset.field = where;
    if (locked) {
      if (made.lock) made.lock(); else input.disabled = true;
      control.title = "Only voice.json itself changes this";
    }
    const s = info.schema;
    const hints = [s.description, rangeHint(s)].filter(Boolean).join(" · ");
    const error = el("span", { class: "error", "data-error-for": where });
    const label = el("label", { for: id }, humanize(key), el("code", { class: "key" }, key));
    const row = el("div", { class: `field kind-${info.kind}` }, label, input, hints ? el("span", { class: "hint" }, hints) : "", error);
    this.fields.set(where, { read, initial: read(), row, error, input: control });
    return row;
  }

  input(id, info, value, list) {
    const s = info.schema;
    if (info.kind === "boolean") {
      const input = el("input", { id, type: "checkbox" });
      input.checked = Boolean(value);
      return { input, read: () => input.checked };
    }
    if (info.kind === "enum") {
      const choices = [...(info.nullable ? [null] : []), ...s.enum];
      const input = el("select", { id }, ...choices.map((c, i) => el("option", { value: String(i) }, c === null ? "— unset —" : String(c))));
      input.value = String(Math.max(0, choices.findIndex((c) => same(c, value))));
      return { input, read: () => choices[Number(input.value)] };
    }
    if (info.kind === "number") {
      const attributes = { id, type: "number", step: s.type === "integer" ? "1" : "any" };
      if (s.minimum !== undefined) attributes.min = s.minimum;
      if (s.maximum !== undefined) attributes.max = s.maximum;
      const input = el("input", attributes);
      input.value = value === null || value === undefined ? "" : String(value);
      return { input, read: () => (input.value === "" ? (info.nullable ? null : "") : Number(input.value)) };
    }
    if (info.kind === "json") {
      const input = el("textarea", { id, rows: 2, spellcheck: "false" });
      input.value = value === null || value === undefined ? "" : JSON.stringify(value);
      return {
        input,
        read: () => {
          const text = input.value.trim();
          if (!text) return info.nullable ? null : (s.type === "array" ? [] : {});
          try { return JSON.parse(text); } catch { return text; } // the agent says what is wrong with it
        },
      };
    }
    const attributes = { id, type: s.format === "password" || s.writeOnly ? "password" : "text", spellcheck: "false" };
    if (list) attributes.list = list;
    const input = el("input", attributes);
    input.value = value === null || value === undefined ? "" : String(value);
    if (info.kind === "union") {
      return { input, read: () => (input.value === "" && info.nullable ? null : (/^-?\d+(\.\d+)?$/.test(input.value) ? Number(input.value) : input.value)) };
    }
    return { input, read: () => (input.value === "" && info.nullable ? null : input.value) };
  }

  /** Only what the user changed, nested as voice.json is: what config.set merges. */
  changes() {
    const changed = {};
    for (const [path, field] of this.fields) {
      const now = field.read();
      if (!same(now, field.initial)) place(changed, path, now);
    }
    return changed;
  }

  /** Every value, nested (the parameters of a train request). */
  values() {
    const all = {};
    for (const [path, field] of this.fields) place(all, path, field.read());
    return all;
  }

  clearProblems() {
    for (const field of this.fields.values()) {
      field.error.textContent = "";
      field.row.classList.remove("invalid");
    }
  }

  /** Each problem next to its field (the longest path that is a field); the rest are returned. */
  showProblems(problems) {
    const left = [];
    for (const problem of problems) {
      const field = this.find(problem.field || "");
      if (!field) {
        left.push(problem);
        continue;
      }
      field.error.textContent = field.error.textContent ? `${field.error.textContent}; ${problem.message}` : problem.message;
      field.row.classList.add("invalid");
    }
    const first = problems.map((p) => this.find(p.field || "")).find(Boolean);
    if (first) first.input.focus();
    return left;
  }

  find(path) {
    const parts = path.split(".");
    for (let n = parts.length; n > 0; n -= 1) {
      const field = this.fields.get(parts.slice(0, n).join("."));
      if (field) return field;
    }
    return null;
  }
}

function place(target, path, value) {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] ??= {};
  node[parts[parts.length - 1]] = value;
}

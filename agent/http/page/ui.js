// Small DOM helpers shared by the screens (no framework: the page is a handful of forms).

/** An element with attributes and children (strings become text, never HTML). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

/** An error paragraph: the message, or hidden when there is none. */
export function say(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

/** A short-lived status line ("Saved"). */
export function status(node, message, kind = "ok") {
  node.textContent = message;
  node.dataset.kind = kind;
}

export function when(seconds) {
  if (!seconds) return "";
  const date = new Date(seconds * 1000);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return date.toDateString() === today.toDateString() ? time : `${date.toLocaleDateString()} ${time}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${Number(seconds).toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A bar of `share` (0-1) with a label. */
export function bar(share, label, kind = "") {
  const percent = Math.max(0, Math.min(100, Math.round((share || 0) * 100)));
  const fill = el("div", { class: "fill" });
  fill.style.width = `${percent}%`; // a style property, not an attribute: the page's policy allows no inline styles
  return el("div", { class: `bar ${kind}`, role: "progressbar", "aria-valuenow": percent, "aria-valuemin": 0, "aria-valuemax": 100 },
    fill, el("span", { class: "label" }, label ?? `${percent} %`));
}

export function badge(text, kind = "") {
  return el("span", { class: `badge ${kind}` }, text);
}

/** A refusal's data.problems next to the inputs of `container` that name them
 * (`[data-error-for=<field>]`); the problems no input names are returned. */
export function showProblems(container, problems) {
  const left = [];
  for (const problem of problems) {
    const slot = container.querySelector(`[data-error-for="${CSS.escape(problem.field || "")}"]`);
    if (!slot) {
      left.push(problem);
      continue;
    }
    slot.textContent = problem.message;
    slot.closest(".field, .slot")?.classList.add("invalid");
  }
  return left;
}

export function clearProblems(container) {
  for (const slot of container.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const field of container.querySelectorAll(".invalid")) field.classList.remove("invalid");
}

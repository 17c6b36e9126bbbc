// Building the page: every value from the API goes in as text (textContent), never as
// HTML, so a SKU such as <img src=x onerror=alert(1)> shows as those characters.

/** An element `tag` with `attributes` (strings; `class` too) and `children`
 *  (elements, or anything else as text). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace what `parent` shows with `children`. */
export function show(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/** "3 min" style age of an ISO timestamp, against now. */
export function age(iso, now = Date.now()) {
  return duration(now - Date.parse(iso));
}

/** A duration in milliseconds as "850 ms", "12 s", "3 min", "2 h", "4 d". */
export function duration(ms) {
  if (!Number.isFinite(ms)) return "";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

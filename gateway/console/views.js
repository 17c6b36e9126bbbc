// The console's views. Each takes the element to draw into and draws itself from the
// gateway's API; values are inserted as text only (dom.js).

import { call, principal, signIn } from "/console/api.js";
import { age, duration, el, show } from "/console/dom.js";

const STATUSES = ["", "pending", "confirmed", "cancelled", "paid"];
const REASONS = ["", "credit_rejected", "customer_cancelled", "expired", "invoice_failed"];
let config = null;

/** What the page knows of the settings (the trace link), read once. */
async function settings() {
  if (config === null) {
    const response = await fetch("/console/config.json", { credentials: "omit", cache: "no-store" });
    config = response.ok ? await response.json() : {};
  }
  return config;
}

/** The orders a view lists and shows: the caller's, or everyone's for an operator. */
function base(who) {
  return who.role === "operator" ? "/ops/orders" : "/me/orders";
}

/** The sign-in form: paste the token `orderflow token` printed; `signedIn` runs after. */
export function signInView(view, message, signedIn) {
  const input = el("textarea", { id: "token", name: "token", required: true, autocomplete: "off", spellcheck: "false" });
  const form = el(
    "form",
    { class: "sign-in", id: "sign-in" },
    el("label", {}, "Token (from orderflow token --customer ID, add --operator for an operator)", input),
    el("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(input.value);
    signedIn();
  });
  show(view, el("h2", {}, "Sign in"), message ? el("p", { class: "muted", id: "sign-in-reason" }, message) : null, form);
}

/** Orders, newest first, a page at a time, filtered by status, cancel reason, time and
 *  (operators) customer; a box to open an order by its id. */
export async function ordersView(view, params) {
  const who = principal();
  const operator = who.role === "operator";
  const choose = (name, values, label) => el("label", {}, label, el("select", { name, id: `filter-${name}` }, values.map((v) => el("option", { value: v, selected: v === (params.get(name) || "") }, v || "any"))));
  const when = (name, label) => el("label", {}, label, el("input", { type: "datetime-local", name, id: `filter-${name}`, value: localValue(params.get(name)) }));
  const filters = el(
    "form",
    { class: "filters", id: "filters" },
    choose("status", STATUSES, "Status"),
    choose("cancel_reason", REASONS, "Cancel reason"),
    operator ? el("label", {}, "Customer", el("input", { name: "customer_id", id: "filter-customer_id", value: params.get("customer_id") || "", size: 12 })) : null,
    when("created_after", "Placed from"),
    when("created_before", "Placed before"),
    el("button", { type: "submit" }, "Filter"),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const field of filters.elements) {
      if (!field.name || !field.value) continue;
      query.set(field.name, field.type === "datetime-local" ? new Date(field.value).toISOString() : field.value);
    }
    location.hash = `#/orders?${query}`;
  });
  const lookup = el("input", { name: "order", id: "order-lookup", placeholder: "order id", size: 38 });
  const find = el("form", { class: "filters", id: "find-order" }, el("label", {}, "Find an order", lookup), el("button", { type: "submit", id: "find" }, "Open"));
  find.addEventListener("submit", (event) => {
    event.preventDefault();
    if (lookup.value.trim()) location.hash = `#/orders/${encodeURIComponent(lookup.value.trim())}`;
  });
  const body = el("tbody");
  const headings = ["Order", ...(operator ? ["Customer"] : []), "Created", "Age", "Total", "Status", "Invoice"];
  const table = el("table", { id: "orders" }, el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))), body);
  const more = el("button", { type: "button", id: "more", hidden: true }, "More");
  show(view, el("h2", {}, operator ? "Orders" : "My orders"), find, filters, table, more);
  let cursor = null;
  async function page() {
    const query = new URLSearchParams({ limit: "50" });
    for (const name of ["status", "cancel_reason", "customer_id", "created_after", "created_before"]) {
      if (params.get(name)) query.set(name, params.get(name));
    }
    if (cursor) query.set("cursor", cursor);
    const result = await call("GET", `${base(who)}?${query}`);
    for (const order of result.items) body.append(orderRow(order, operator));
    if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: headings.length }, "No orders.")));
    cursor = result.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => page());
  await page();
}

/** An ISO time as the value of a datetime-local input (local time), or "". */
function localValue(iso) {
  if (!iso || Number.isNaN(Date.parse(iso))) return "";
  const moment = new Date(iso);
  return new Date(moment.getTime() - moment.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function orderRow(order, operator) {
  return el(
    "tr",
    { "data-order": order.id },
    el("td", {}, el("a", { href: `#/orders/${order.id}` }, order.id)),
    operator ? el("td", { class: "customer" }, order.customer_id) : null,
    el("td", {}, order.created_at),
    el("td", {}, age(order.created_at)),
    el("td", { class: "number" }, `${order.total} ${order.currency}`),
    el("td", { class: `status status-${order.status}` }, order.status, order.cancel_reason ? ` (${order.cancel_reason})` : ""),
    el("td", {}, order.invoice_number || ""),
  );
}

/** One order: its fields, its invoice and its saga as steps in time. */
export async function orderView(view, orderId) {
  const detail = await call("GET", `${base(principal())}/${encodeURIComponent(orderId)}`);
  const { trace_url_template: traceUrl } = await settings();
  const { order, invoice, timeline } = detail;
  const lines = el(
    "table",
    { id: "lines" },
    el("thead", {}, el("tr", {}, ["SKU", "Quantity", "Unit price"].map((h) => el("th", {}, h)))),
    el("tbody", {}, order.lines.map((line) => el("tr", {}, el("td", { class: "sku" }, line.sku), el("td", { class: "number" }, line.quantity), el("td", { class: "number" }, line.unit_price)))),
  );
  show(
    view,
    el("h2", {}, "Order ", el("span", { id: "order-id" }, order.id)),
    fields({ Customer: order.customer_id, Status: order.status, "Cancel reason": order.cancel_reason, Total: `${order.total} ${order.currency}`, Created: order.created_at, Updated: order.updated_at }, "order-fields"),
    el("h3", {}, "Saga"),
    timelineList(timeline, traceUrl),
    el("h3", {}, "Invoice"),
    invoice
      ? fields({ Number: invoice.number, Status: invoice.status, Total: `${invoice.total} ${invoice.currency}`, Issued: invoice.issued_at, Paid: invoice.paid_at, Voided: invoice.voided_at, "Void reason": invoice.void_reason }, "invoice-fields")
      : el("p", { id: "no-invoice", class: "muted" }, detail.partial_failures.length ? "The invoices service did not answer." : "No invoice."),
    el("h3", {}, "Lines"),
    lines,
  );
}

function fields(values, id) {
  const list = el("dl", { class: "fields", id });
  for (const [name, value] of Object.entries(values)) {
    if (value === null || value === undefined || value === "") continue;
    list.append(el("dt", {}, name), el("dd", { "data-field": name }, value));
  }
  return list;
}

function timelineList(timeline, traceUrl) {
  const list = el("ol", { class: "timeline", id: "timeline" });
  let previous = null;
  for (const step of timeline) {
    const at = Date.parse(step.at);
    list.append(
      el(
        "li",
        { class: `outcome-${step.outcome}`, "data-event": step.event },
        el("strong", {}, step.event),
        " ",
        el("span", { class: "status" }, step.outcome),
        el("div", { class: "step-time" }, step.at, previous === null ? "" : ` (+${duration(at - previous)})`),
        step.detail ? el("div", { class: "muted" }, step.detail) : null,
        traceUrl && step.trace_id ? el("a", { class: "trace", href: traceUrl.replace("{trace_id}", encodeURIComponent(step.trace_id)), target: "_blank", rel: "noopener noreferrer" }, "trace") : null,
      ),
    );
    previous = at;
  }
  return list;
}

/** The dead letters of both services (operators), newest first, each with Replay. */
export async function deadLettersView(view, params) {
  const all = params.get("all") === "true";
  const toggle = el("a", { href: all ? "#/dead-letters" : "#/dead-letters?all=true", id: "toggle-replayed" }, all ? "Hide the replayed ones" : "Show the replayed ones too");
  const body = el("tbody");
  const table = el(
    "table",
    { id: "dead-letters" },
    el("thead", {}, el("tr", {}, ["Service", "Message", "Actor", "Order", "Error", "Failed", "Replayed", ""].map((h) => el("th", {}, h)))),
    body,
  );
  const result = await call("GET", `/ops/dead-letters?all=${all}`);
  show(view, el("h2", {}, "Dead letters"), toggle, table, failuresNote(result.partial_failures));
  for (const letter of result.items) body.append(deadLetterRow(letter));
  if (!result.items.length) body.append(el("tr", {}, el("td", { colspan: 8 }, "No dead letters.")));
}

function deadLetterRow(letter) {
  const replayed = el("td", { class: "replayed" }, replayedText(letter));
  const outcome = el("div", { class: "muted outcome", role: "status" });
  const button = el("button", { type: "button", class: "replay" }, "Replay");
  button.addEventListener("click", async () => {
    outcome.textContent = "";
    button.disabled = true;
    try {
      const now = await call("POST", `/ops/dead-letters/${encodeURIComponent(letter.service)}/${encodeURIComponent(letter.message_id)}/replay`);
      replayed.textContent = replayedText(now);
      outcome.textContent = `Sent again as ${now.new_message_id}.`;
    } catch (error) {
      outcome.textContent = `Not replayed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return el(
    "tr",
    { "data-message": letter.message_id },
    el("td", {}, letter.service),
    el("td", { class: "message-id" }, letter.message_id),
    el("td", {}, letter.actor_name),
    el("td", {}, letter.order_id ? el("a", { href: `#/orders/${letter.order_id}` }, letter.order_id) : ""),
    el("td", { class: "error", title: letter.error }, letter.error_summary),
    el("td", {}, letter.failed_at, el("div", { class: "muted" }, letter.age_seconds < 1 ? "just now" : `${duration(letter.age_seconds * 1000)} ago`)),
    replayed,
    el("td", {}, button, outcome),
  );
}

function replayedText(letter) {
  return letter.replayed_at ? `by ${letter.replayed_by} at ${letter.replayed_at}` : "not yet";
}

function failuresNote(failures) {
  if (!failures || !failures.length) return null;
  return el("p", { class: "muted", id: "partial" }, failures.map((f) => `${f.service}: ${f.reason} (${f.detail})`).join("; "));
}

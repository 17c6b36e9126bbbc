// The console's views. Each takes the element to draw into and draws itself from the
// gateway's API; values are inserted as text only (dom.js).

import { call, principal, signIn } from "/console/api.js";
import { age, duration, el, show } from "/console/dom.js";

const STATUSES = ["", "pending", "confirmed", "cancelled", "paid"];

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

/** The caller's orders, newest first, a page at a time, filtered by status. */
export async function ordersView(view, params) {
  const who = principal();
  const status = params.get("status") || "";
  const select = el("select", { name: "status", id: "status-filter" }, STATUSES.map((s) => el("option", { value: s, selected: s === status }, s || "any")));
  const lookup = el("input", { name: "order", id: "order-lookup", placeholder: "order id", size: 38 });
  const filters = el(
    "form",
    { class: "filters", id: "filters" },
    el("label", {}, "Status", select),
    el("button", { type: "submit" }, "Filter"),
    el("label", {}, "Find an order", lookup),
    el("button", { type: "button", id: "find" }, "Open"),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/orders?status=${encodeURIComponent(select.value)}`;
  });
  filters.querySelector("#find").addEventListener("click", () => {
    if (lookup.value.trim()) location.hash = `#/orders/${encodeURIComponent(lookup.value.trim())}`;
  });
  const body = el("tbody");
  const table = el(
    "table",
    { id: "orders" },
    el("thead", {}, el("tr", {}, ["Order", "Created", "Age", "Total", "Status", "Invoice"].map((h) => el("th", {}, h)))),
    body,
  );
  const more = el("button", { type: "button", id: "more", hidden: true }, "More");
  show(view, el("h2", {}, who.role === "operator" ? "Orders" : "My orders"), filters, table, more);
  if (who.role === "operator") {
    show(body, el("tr", {}, el("td", { colspan: 6 }, "Operators open an order by its id above.")));
    return;
  }
  let cursor = null;
  async function page() {
    const query = new URLSearchParams({ limit: "50" });
    if (status) query.set("status", status);
    if (cursor) query.set("cursor", cursor);
    const result = await call("GET", `/me/orders?${query}`);
    for (const order of result.items) body.append(orderRow(order));
    if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: 6 }, "No orders.")));
    cursor = result.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => page());
  await page();
}

function orderRow(order) {
  return el(
    "tr",
    { "data-order": order.id },
    el("td", {}, el("a", { href: `#/orders/${order.id}` }, order.id)),
    el("td", {}, order.created_at),
    el("td", {}, age(order.created_at)),
    el("td", { class: "number" }, `${order.total} ${order.currency}`),
    el("td", { class: `status status-${order.status}` }, order.status, order.cancel_reason ? ` (${order.cancel_reason})` : ""),
    el("td", {}, order.invoice_number || ""),
  );
}

/** One order: its fields, its invoice and its saga as steps in time. */
export async function orderView(view, orderId) {
  const detail = await call("GET", `/me/orders/${encodeURIComponent(orderId)}`);
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
    timelineList(timeline),
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

function timelineList(timeline) {
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
      ),
    );
    previous = at;
  }
  return list;
}

// The Health view (operators): the audit's invariants I1-I7, each service's outbox
// backlog and dead letters, the queues and the fronts, from GET /ops/health, read again
// every few seconds while the view is open. Values are inserted as text only (dom.js).

import { SignedOut, call } from "/console/api.js";
import { duration, el, show } from "/console/dom.js";

export const REFRESH_MS = 3000;

/** Draw the health now, then again every REFRESH_MS while `open()` is true. A refused
 *  token goes to `failed` (sign-in); another error is shown and the next read tries again. */
export async function healthView(view, open, failed) {
  const stamp = el("p", { class: "muted", id: "health-at" });
  const body = el("div", { id: "health" });
  show(view, el("h2", {}, "Health"), stamp, body);
  let reads = 0;
  async function refresh() {
    const health = await call("GET", "/ops/health");
    reads += 1;
    body.replaceChildren(...drawHealth(health));
    stamp.textContent = `Read at ${new Date().toLocaleTimeString()}; read again every ${REFRESH_MS / 1000} s.`;
    stamp.dataset.reads = String(reads);
  }
  await refresh();
  const again = async () => {
    if (!open()) return;
    try {
      await refresh();
    } catch (error) {
      if (!open()) return;
      if (error instanceof SignedOut) return failed(error); // back to sign-in, polling ends
      stamp.textContent = `Not read again at ${new Date().toLocaleTimeString()}: ${error.message}; trying again.`;
    }
    if (open()) setTimeout(again, REFRESH_MS);
  };
  setTimeout(again, REFRESH_MS);
}

function drawHealth(health) {
  const parts = [el("h3", {}, "Fronts"), frontsList(health.fronts)];
  const report = health.report;
  if (!report) {
    const why = health.partial_failures.map((f) => `${f.reason}: ${f.detail}`).join("; ");
    parts.push(el("p", { class: "bad", id: "audit-missing" }, `The audit part did not answer (${why}).`));
    return parts;
  }
  parts.push(el("h3", {}, "Audit"), auditSummary(report.audit), invariantsTable(report.audit.report));
  parts.push(el("h3", {}, "Outboxes and dead letters"), servicesTable(report.services));
  parts.push(el("h3", {}, "Queues"), queuesTable(report.queues));
  if (report.problems.length) {
    parts.push(
      el("h3", {}, "Could not read"),
      el("ul", { id: "health-problems" }, report.problems.map((p) => el("li", { class: "bad" }, `${p.part}: ${p.detail}`))),
    );
  }
  return parts;
}

function frontsList(fronts) {
  return el(
    "ul",
    { id: "fronts" },
    fronts.map((front) => el("li", { "data-service": front.service, class: front.ready ? "ok" : "bad" }, `${front.service}: ${front.detail}`)),
  );
}

function auditSummary(run) {
  const last = run.report;
  const when = last ? `Last run at ${last.at}, took ${duration(run.duration_seconds * 1000)}; ` : "The first run has not ended yet; ";
  const verdict = last ? el("strong", { id: "audit-verdict", class: last.ok ? "ok" : "bad" }, last.ok ? "every invariant holds." : "an invariant is broken.") : null;
  return el(
    "p",
    { id: "audit-summary" },
    when,
    `runs every ${run.interval_seconds} s${run.running ? " (running now)" : ""}. `,
    verdict,
    run.error ? el("span", { class: "bad", id: "audit-error" }, ` The last run failed: ${run.error}`) : null,
  );
}

function invariantsTable(report) {
  const rows = report
    ? report.invariants.map((inv) =>
        el(
          "tr",
          { "data-code": inv.code, class: inv.ok ? "ok" : "bad" },
          el("td", {}, inv.code),
          el("td", {}, inv.title),
          el("td", { class: "result" }, inv.ok ? "holds" : "BROKEN"),
          el("td", { class: "number" }, inv.count),
          el("td", { class: "offenders" }, inv.offenders.length ? `${inv.offenders.join(", ")}${inv.count > inv.offenders.length ? ", …" : ""}` : "", inv.detail ? el("div", { class: "muted" }, inv.detail) : null),
        ),
      )
    : [el("tr", {}, el("td", { colspan: 5 }, "No audit yet."))];
  return table("invariants", ["", "Invariant", "Result", "Count", "Details"], rows);
}

function servicesTable(services) {
  const rows = services.map((s) =>
    el(
      "tr",
      { "data-service": s.service },
      el("td", {}, s.service),
      el("td", { class: "number outbox-pending" }, s.outbox_pending),
      el("td", { class: "number" }, s.outbox_oldest_seconds === null ? "" : duration(s.outbox_oldest_seconds * 1000)),
      el("td", { class: "number dead-letters" }, s.dead_letters ? el("a", { href: "#/dead-letters" }, s.dead_letters) : "0"),
    ),
  );
  return table("outboxes", ["Service", "Outbox: not yet published", "Oldest", "Dead letters"], rows);
}

function queuesTable(queues) {
  if (queues === null) return el("p", { class: "muted", id: "queues" }, "No RabbitMQ: messages go through the in-process broker (standalone).");
  const rows = queues.map((q) =>
    el(
      "tr",
      { "data-queue": q.queue, class: !q.queue.includes(".") && q.consumers === 0 ? "bad" : "" },
      el("td", {}, q.queue),
      el("td", { class: "number messages" }, q.messages),
      el("td", { class: "number consumers" }, q.consumers),
    ),
  );
  return table("queues", ["Queue", "Messages ready", "Consumers"], rows);
}

function table(id, headings, rows) {
  return el("table", { id }, el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))), el("tbody", {}, rows));
}

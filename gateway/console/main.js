// The console's router: #/orders, #/orders/<id>, #/dead-letters, #/health; sign-in
// when there is no token.

import { ApiError, SignedOut, principal, signOut, token } from "/console/api.js";
import { show } from "/console/dom.js";
import { healthView } from "/console/health.js";
import { deadLettersView, orderView, ordersView, signInView } from "/console/views.js";

const view = document.getElementById("view");
const message = document.getElementById("message");
const nav = document.getElementById("nav");

function say(text) {
  message.textContent = text || "";
  message.hidden = !text;
}

let shown = 0; // which route() drew the page; a view that refreshes stops when it changes

function failed(error) {
  if (error instanceof SignedOut) {
    route(`Signed out: ${error.message}. Sign in again.`);
  } else if (error instanceof ApiError) {
    say(error.status === 404 ? "Not found." : `${error.status}: ${error.message}`);
  } else {
    say(`Something went wrong: ${error.message}`);
  }
}

async function route(reason) {
  const current = ++shown;
  say("");
  if (!token()) {
    nav.hidden = true;
    signInView(view, reason, () => {
      if (location.hash === "#/orders") route();
      else location.hash = "#/orders";
    });
    return;
  }
  const who = principal();
  nav.hidden = false;
  document.getElementById("who").textContent = `${who.role} ${who.subject}`;
  for (const link of document.querySelectorAll("[data-operators]")) link.hidden = who.role !== "operator";
  const [path, query] = (location.hash.slice(1) || "/orders").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts[0] === "orders" && parts[1]) await orderView(view, decodeURIComponent(parts[1]));
    else if (parts[0] === "dead-letters") await deadLettersView(view, params);
    else if (parts[0] === "health") await healthView(view, () => current === shown, failed);
    else await ordersView(view, params);
  } catch (error) {
    if (error instanceof ApiError) show(view);
    failed(error);
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  location.hash = "";
  route("Signed out.");
});
window.addEventListener("hashchange", () => route());
route();

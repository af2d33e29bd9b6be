// Entry point: sign-in, navigation between views (hash routes), session handling.
import { call, errorText, token } from "./api.js";
import { showActivity, showAllowance } from "./activity.js";
import { showComplaintDetail, showComplaints } from "./complaints.js";
import { h, mount, note } from "./dom.js";
import { showCounts } from "./nav-counts.js";
import { showOrderDetail, showOrders } from "./orders.js";
import { showReconciliation, showReconciliations } from "./reconcile.js";
import { showCustomer } from "./customers.js";
import { showMinorClaims } from "./minors.js";
import { showRefunds } from "./refunds.js";
import { showReviews } from "./reviews.js";
import { bindSearchBox, showSearch } from "./search.js";
import { session } from "./session.js";
import { showTasks } from "./tasks.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const whoami = document.getElementById("whoami");

// Each view gets a context; ``alive()`` turns false once the user navigates away, so
// timers and late responses of a left view do nothing.
let generation = 0;

function route() {
  const hash = location.hash.replace(/^#/, "") || "/orders";
  const [path, queryString] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  return { parts, query: new URLSearchParams(queryString || "") };
}

function takeTokenFromUrl() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return;
  token.set(decodeURIComponent(m[1]));
  session.clear(); // another token: ask again who this is
  history.replaceState(null, "", `${location.pathname}${location.search}#/orders`);
}

// The hash the current view was rendered for: a hashchange for it (after ``navigate``) is not
// rendered a second time.
let renderedHash = null;

/** Go to ``hash`` and render it now (also when it is the current one, e.g. 查询 again). The
 * view is replaced before the click that asked for it returns, so nothing typed right after
 * lands in a form that is about to go. */
function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
  render();
}

function signedIn(me) {
  session.set(me);
  whoami.textContent = `${me.role_label} · ${me.actor}`;
  whoami.title = me.role;
  whoami.dataset.role = me.role;
  whoami.hidden = false;
}

function signedOut() {
  token.clear();
  session.clear();
  whoami.hidden = true;
  whoami.textContent = "";
  document.getElementById("allowance").hidden = true;
}

async function render() {
  const gen = ++generation;
  renderedHash = location.hash;
  const ctx = { main, alive: () => gen === generation, rerender: render, navigate };
  if (!token.get()) {
    nav.hidden = true;
    showLogin();
    return;
  }
  if (!session.get()) {
    // who this is and what they may do, once per sign-in (a page reload asks again)
    mount(main, h("p", { class: "muted" }, "加载中…"));
    let me;
    try {
      me = await call("GET", "/api/admin/me");
    } catch (err) {
      if (gen !== generation || err.status === 401) return; // a 401 already went back to sign-in
      const error = note();
      mount(main, error);
      error.show(errorText(err));
      return;
    }
    if (gen !== generation) return;
    signedIn(me);
  }
  nav.hidden = false;
  showAllowance(ctx.alive);
  showCounts(ctx.alive);
  const { parts, query } = route();
  const section = parts[0] || "orders";
  for (const link of nav.querySelectorAll("[data-nav]")) {
    link.toggleAttribute("aria-current", link.dataset.nav === section);
  }
  if (section === "orders" && parts[1]) showOrderDetail(ctx, decodeURIComponent(parts[1]));
  else if (section === "reviews") showReviews(ctx);
  else if (section === "minors") showMinorClaims(ctx);
  else if (section === "customers") showCustomer(ctx, parts[1] ? decodeURIComponent(parts[1]) : "");
  else if (section === "tasks") showTasks(ctx);
  else if (section === "reconcile" && parts[1]) showReconciliation(ctx, decodeURIComponent(parts[1]));
  else if (section === "reconcile") showReconciliations(ctx, query);
  else if (section === "search") showSearch(ctx, query);
  else if (section === "refunds") showRefunds(ctx, query);
  else if (section === "activity") showActivity(ctx, query);
  else if (section === "complaints" && parts[1]) showComplaintDetail(ctx, decodeURIComponent(parts[1]));
  else if (section === "complaints") showComplaints(ctx, query);
  else showOrders(ctx, query);
}

function showLogin(message) {
  const input = h("textarea", {
    id: "token-input", name: "token", rows: 3, required: true, autocomplete: "off", spellcheck: "false",
    placeholder: "粘贴管理员令牌（make run 输出的 Admin token）",
  });
  const error = note();
  const submit = h("button", { type: "submit", class: "primary" }, "登录");
  const form = h("form", { class: "card login", id: "login-form" },
    h("h1", {}, "管理员登录"),
    h("label", { for: "token-input" }, "管理员令牌"),
    input,
    h("p", { class: "muted small" }, "令牌只保存在当前标签页（sessionStorage），关闭标签页后需重新登录。"),
    h("div", { class: "actions" }, submit),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim().replace(/^Bearer\s+/i, "");
    if (!value) {
      error.show("请输入令牌");
      return;
    }
    submit.disabled = true;
    try {
      const me = await call("GET", "/api/admin/me", { authToken: value });
      token.set(value);
      signedIn(me);
      if (!location.hash.startsWith("#/")) history.replaceState(null, "", "#/orders");
      render();
    } catch (err) {
      error.show(errorText(err));
    } finally {
      submit.disabled = false;
    }
  });
  mount(main, form);
  if (message) error.show(message);
  input.focus();
}

window.addEventListener("console:unauthenticated", (event) => {
  signedOut();
  generation++;
  nav.hidden = true;
  document.getElementById("refund-dialog").close?.();
  document.getElementById("abnormal-dialog").close?.();
  document.getElementById("offline-dialog").close?.();
  document.getElementById("complaint-dialog").close?.();
  showLogin(event.detail);
});

document.getElementById("logout").addEventListener("click", () => {
  signedOut();
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  render();
});

window.addEventListener("hashchange", () => {
  if (/^#token=/.test(location.hash)) takeTokenFromUrl();
  if (location.hash !== renderedHash) render();
});

bindSearchBox(navigate);
takeTokenFromUrl();
render();

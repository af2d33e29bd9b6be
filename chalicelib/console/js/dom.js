// Tiny DOM helpers: build elements without innerHTML so API text is never parsed as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function mount(container, ...children) {
  container.replaceChildren();
  append(container, children);
  return container;
}

const TIME_FMT = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** ISO timestamp -> "2026/11/25 19:34:10" (Beijing time); "—" when absent. */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : TIME_FMT.format(d);
}

export function dash(value) {
  return value === null || value === undefined || value === "" ? "—" : value;
}

/** A definition list of [label, value] rows; rows with value === undefined are skipped. */
export function fields(rows) {
  return h("dl", { class: "fields" },
    rows.filter(([, v]) => v !== undefined).map(([label, value]) => [h("dt", {}, label), h("dd", {}, dash(value))]));
}

/** A section card with a heading; ``name`` is a stable hook for tests and styles. */
export function block(name, title, ...content) {
  return h("section", { class: "card", dataset: { block: name }, "aria-label": title },
    h("h2", {}, title), ...content);
}

export function pill(text, kind) {
  return h("span", { class: `pill ${kind || ""}`.trim() }, dash(text));
}

/** A paragraph for an inline error or note next to an action. */
export function note(kind = "error") {
  const el = h("p", { class: `note ${kind}`, role: kind === "error" ? "alert" : "status" });
  el.hidden = true;
  el.show = (text) => { el.textContent = text || ""; el.hidden = !text; };
  return el;
}

let flashTimer;
export function flash(text, kind = "ok") {
  const el = document.getElementById("flash");
  el.textContent = text;
  el.className = `flash ${kind}`;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

/** Disable a button while ``fn`` runs; returns fn's result. */
export async function busy(button, fn) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } finally {
    button.disabled = was;
    button.removeAttribute("aria-busy");
  }
}

/**
 * Only the latest request of a view may render. ``const begin = latest(ctx)`` once per view; each
 * request then takes ``const current = begin()`` and renders only while ``current()`` holds: a
 * response that arrives after a newer request was made (or after the view was left) is dropped.
 */
export function latest(ctx) {
  let seq = 0;
  return () => {
    const mine = ++seq;
    return () => ctx.alive() && mine === seq;
  };
}

/**
 * A list that loads page by page with a 加载更多 button, into `list`.
 * `fetchPage(cursor)` returns `{items, next_cursor}`; `render(items)` builds the list element;
 * `empty` is the text shown when there is nothing; `errorText(err)` words a failure.
 * Returns `load`: call it with no cursor to (re)load from the first page.
 */
export function pagedList(ctx, list, { fetchPage, render, empty, errorText }) {
  const items = [];
  const begin = latest(ctx);
  const load = async (cursor = null) => {
    const current = begin();
    if (!cursor) mount(list, h("p", { class: "muted" }, "加载中…"));
    let page;
    try {
      page = await fetchPage(cursor);
    } catch (err) {
      if (!current()) return;
      const error = note();
      mount(list, error);
      error.show(errorText(err));
      return;
    }
    if (!current()) return;
    if (!cursor) items.length = 0;
    items.push(...page.items);
    const more = page.next_cursor
      ? h("button", { type: "button", onclick: () => load(page.next_cursor) }, "加载更多")
      : null;
    mount(list, items.length ? render(items) : h("p", { class: "empty" }, empty()), more);
  };
  return load;
}

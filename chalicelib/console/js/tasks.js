// Manual tasks: what a refund could not undo by itself. Mark done with a note; export CSV.
import { call, download, errorText, seg } from "./api.js";
import { actorName, choices, detailField, wechatWord } from "./catalogue.js";
import { yuan } from "./money.js";
import { can } from "./session.js";
import { busy, dash, flash, fmtTime, h, mount, note, pagedList } from "./dom.js";

const PAGE_SIZE = 50;

export async function showTasks(ctx) {
  let status = "open";
  const list = h("div", { class: "list-body" });
  const statusSelect = h("select", { id: "task-status", name: "status" },
    choices("TaskStatus").map(([code, text]) => h("option", { value: code }, text)));
  const csv = h("button", { type: "button", id: "tasks-csv" }, "导出 CSV");
  const csvError = note();
  statusSelect.addEventListener("change", () => { status = statusSelect.value; load(); });
  csv.addEventListener("click", () => busy(csv, async () => {
    csvError.show("");
    try {
      const name = await download("/api/admin/manual-tasks", { status, format: "csv" }, `manual-tasks-${status}.csv`);
      flash(`已下载 ${name}`);
    } catch (err) {
      csvError.show(errorText(err));
    }
  }));
  mount(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "人工任务"),
      h("label", { class: "inline" }, h("span", {}, "状态"), statusSelect), can("data.export") ? csv : null),
    csvError,
    h("p", { class: "muted" }, "退款成功后系统无法自动还原的事项（退货入库、不可撤销的资产或履约等），处理后标记完成。"),
    list);

  const load = pagedList(ctx, list, {
    fetchPage: (cursor) => call("GET", "/api/admin/manual-tasks", { query: { status, limit: PAGE_SIZE, cursor } }),
    render: (items) => h("ol", { class: "task-list", id: "task-list" }, items.map(taskCard)),
    empty: () => `没有${statusSelect.selectedOptions[0]?.textContent || ""}的任务`,
    errorText,
  });
  await load();
}

/** What the system recorded about the case (WeChat's answer, the amounts that differ...), with
 * the domain's Chinese names (catalogue: details): fen as 元, times in Beijing time, WeChat's
 * states by their Chinese names; a field the catalogue does not name keeps its key. */
function detailView(detail) {
  if (!detail || typeof detail !== "object") return null;
  const entries = Object.entries(detail).filter(([k, v]) => v !== null && v !== undefined && v !== ""
    && !(k.endsWith("_yuan") && k.slice(0, -5) in detail));  // the fen field is shown as 元
  if (!entries.length) return null;
  const shown = (k, v) => {
    const field = detailField(k);
    if (v !== null && typeof v === "object") return JSON.stringify(v);
    if (field?.kind === "fen" && Number.isInteger(v)) return yuan(v);
    if (field?.kind === "time") return fmtTime(v);
    if (field?.kind === "wechat") return wechatWord(k, v);
    if (field?.kind === "actor") return actorName(v);
    return dash(v);
  };
  return h("details", { class: "task-detail", open: true }, h("summary", {}, "详情"),
    h("dl", { class: "fields" }, entries.map(([k, v]) => {
      const field = detailField(k);
      return [h("dt", field ? { dataset: { key: k } } : { class: "mono", dataset: { key: k } }, field ? field.label : k),
        h("dd", {}, shown(k, v))];
    })));
}

function taskCard(t) {
  const rows = [
    ["订单号", h("a", { href: `#/orders/${seg(t.order_no)}` }, t.order_no)],
    ["退款单号", h("span", { class: "mono" }, dash(t.refund_no))],
    ["用户ID", dash(t.user_id)],
    ["创建时间", fmtTime(t.created_at)],
  ];
  if (t.status === "done") {
    rows.push(["处理人", dash(t.done_by)], ["处理时间", fmtTime(t.done_at)], ["备注", dash(t.note)]);
  }
  const card = h("li", { class: "card task", dataset: { task: t.task_id } },
    h("div", { class: "refund-head" }, h("strong", {}, t.type_label || t.type),
      h("span", { class: `pill ${t.status === "open" ? "warn" : "ok"}` }, t.status_label)),
    h("p", { class: "action-text" }, t.action),
    h("dl", { class: "fields" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    detailView(t.detail));
  if (t.status === "done" && can("tasks.complete")) {
    const reopen = h("button", { type: "button", dataset: { action: "reopen" } }, "重新打开");
    const reopenError = note();
    reopen.addEventListener("click", () => busy(reopen, async () => {
      reopenError.show("");
      if (!window.confirm(`重新打开任务“${t.type_label || t.type}”（订单 ${t.order_no}）？`)) return;
      try {
        const updated = await call("POST", `/api/admin/manual-tasks/${seg(t.task_id)}/reopen`, { body: {} });
        card.replaceWith(taskCard(updated));
        flash("任务已重新打开");
      } catch (err) {
        reopenError.show(errorText(err));
      }
    }));
    card.append(h("div", { class: "decide" }, reopen), reopenError);
    return card;
  }
  if (t.status !== "open" || !can("tasks.complete")) return card;

  const noteInput = h("input", { name: "note", maxlength: 200, autocomplete: "off", placeholder: "处理备注，如 已退货入库",
    "aria-label": "处理备注" });
  const doneButton = h("button", { type: "button", class: "primary" }, "标记完成");
  const error = note();
  doneButton.addEventListener("click", () => busy(doneButton, async () => {
    error.show("");
    if (!window.confirm(`确认任务“${t.type_label || t.type}”（订单 ${t.order_no}）已处理完成？`)) return;
    try {
      const updated = await call("POST", `/api/admin/manual-tasks/${seg(t.task_id)}/done`,
        { body: { note: noteInput.value.trim() } });
      card.replaceWith(taskCard(updated));
      flash("任务已标记完成");
    } catch (err) {
      error.show(errorText(err));
    }
  }));
  card.append(h("div", { class: "decide" }, noteInput, doneButton), error);
  return card;
}

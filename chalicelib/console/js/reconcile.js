// 对账: WeChat Pay's daily trade bill against our books. Dates with their status; a day's report
// with its discrepancies, linked to their orders; run or rerun a date; CSV export.
import { call, download, errorText, seg } from "./api.js";
import { busy, dash, flash, fmtTime, h, mount, note, pagedList, pill } from "./dom.js";
import { yuan } from "./money.js";
import { can } from "./session.js";

const PAGE_SIZE = 50;
const STATUS_KIND = { done: "ok", running: "info", failed: "bad", not_ready: "warn" };
const POLL_MS = 2000;

/** A run's state as a pill: a refused bill (SHA1 check failed) reads differently from other failures. */
function statusPill(r) {
  if (!r.status) return h("span", { class: "muted" }, r.status_label);
  if (r.status === "failed" && r.refused) return pill("账单校验失败", "bad");
  return pill(r.status_label, STATUS_KIND[r.status]);
}

function elapsed(startedAt) {
  const ms = Date.now() - new Date(startedAt).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s} 秒` : `${Math.floor(s / 60)} 分 ${s % 60} 秒`;
}

function progressText(r) {
  return `进行中：已处理 ${r.lines_done ?? 0} 行 · 已用时 ${elapsed(r.started_at)}`;
}

const LIST_COLUMNS = ["账单日期", "状态", "账单行数", "一致", "差异", "完成时间"];

function runRow(r) {
  const cell = (i, ...content) => h("td", { dataset: { label: LIST_COLUMNS[i] } }, ...content);
  const counted = r.status === "done" || r.status === "failed";  // not ready / running: no figures yet
  const figure = (v) => (counted ? dash(v) : "—");
  return h("tr", { dataset: { date: r.bill_date, status: r.status || "none" } },
    cell(0, h("a", { href: `#/reconcile/${r.bill_date}` }, r.bill_date)),
    cell(1, h("span", { class: "recon-state" }, statusPill(r),
      r.overdue ? [" ", pill("逾期未对账", "bad")] : null,
      r.status === "done" && r.refused ? [" ", pill("重跑账单校验失败", "warn")] : null,
      r.status === "running" ? [" ", h("span", { class: "small muted" }, progressText(r))] : null)),
    cell(2, figure(r.lines_read)), cell(3, figure(r.matched)), cell(4, figure(r.discrepancies)),
    cell(5, r.finished_at ? fmtTime(r.finished_at) : "—"));
}

export async function showReconciliations(ctx, query) {
  const params = query || new URLSearchParams();
  const filters = { from: params.get("from") || "", to: params.get("to") || "", diff: params.get("diff") === "1" };
  const list = h("div", { class: "list-body" });
  const form = h("form", { class: "filters", id: "recon-filters" },
    h("label", { class: "field" }, h("span", {}, "账单日期从"),
      h("input", { type: "date", name: "from", id: "recon-from", value: filters.from })),
    h("label", { class: "field" }, h("span", {}, "至"),
      h("input", { type: "date", name: "to", id: "recon-to", value: filters.to })),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "diff", id: "recon-diff", checked: filters.diff }),
      " 只看有差异的日期"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "筛选")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const name of ["from", "to"]) if (data.get(name)) next.set(name, String(data.get(name)));
    if (data.get("diff")) next.set("diff", "1");
    ctx.navigate(`#/reconcile${next.toString() ? `?${next}` : ""}`);
  });
  mount(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "对账")),
    h("p", { class: "muted" }, "每日与微信支付交易账单核对订单与退款。差异会生成“对账差异”人工任务。"),
    form, list);
  let timer = null;
  const load = async () => {
    let data;
    try {
      data = await call("GET", "/api/admin/reconciliations");
    } catch (err) {
      if (!ctx.alive()) return;
      const error = note();
      mount(list, error);
      error.show(errorText(err));
      return;
    }
    if (!ctx.alive()) return;
    const items = data.items.filter((r) => (!filters.from || r.bill_date >= filters.from)
      && (!filters.to || r.bill_date <= filters.to) && (!filters.diff || (r.discrepancies || 0) > 0));
    mount(list, items.length ? h("div", { class: "table-wrap" }, h("table", { class: "orders", id: "recon-table" },
      h("thead", {}, h("tr", {}, LIST_COLUMNS.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map(runRow))))
      : h("p", { class: "empty" }, "没有符合条件的日期"));
    // a run under way: follow it until it ends
    if (data.items.some((r) => r.status === "running")) {
      clearTimeout(timer);
      timer = setTimeout(() => { if (ctx.alive()) load(); }, POLL_MS);
    }
  };
  await load();
}

export async function showReconciliation(ctx, billDate) {
  const summary = h("div", { id: "recon-report" });
  const list = h("div", { class: "list-body" });
  const runButton = h("button", { type: "button", class: "primary", id: "recon-run" }, "开始对账");
  const csv = h("button", { type: "button", id: "recon-csv" }, "导出差异 CSV");
  const error = note();
  mount(ctx.main,
    h("p", {}, h("a", { href: "#/reconcile" }, "← 对账列表")),
    h("div", { class: "page-head" }, h("h1", {}, `对账 ${billDate}`), can("reconcile.run") ? runButton : null,
      can("data.export") ? csv : null),
    error, summary, h("h2", {}, "差异明细"), list);

  const loadList = pagedList(ctx, list, {
    fetchPage: (cursor) => call("GET", `/api/admin/reconciliations/${seg(billDate)}/discrepancies`,
      { query: { limit: PAGE_SIZE, cursor } }),
    render: (items) => h("ol", { class: "task-list", id: "recon-discrepancies" }, items.map(discrepancyCard)),
    empty: () => "没有差异",
    errorText,
  });

  let timer = null;
  let hasReport = false;
  const load = async () => {
    clearTimeout(timer);
    let report;
    try {
      report = await call("GET", `/api/admin/reconciliations/${seg(billDate)}`);
    } catch (err) {
      if (!ctx.alive()) return;
      if (err.code === "RECONCILIATION_NOT_FOUND") {
        mount(summary, h("p", { class: "empty" }, "该日期尚未对账"));
        mount(list);
        csv.disabled = true;
        return;
      }
      error.show(errorText(err));
      return;
    }
    if (!ctx.alive()) return;
    hasReport = true;
    csv.disabled = report.status !== "done";
    runButton.textContent = "重新对账";
    runButton.disabled = report.status === "running";
    mount(summary, reportCard(report));
    if (report.status === "running") {  // follow the run until it ends
      timer = setTimeout(() => { if (ctx.alive()) load(); }, POLL_MS);
      return;
    }
    await loadList();
  };

  runButton.addEventListener("click", () => busy(runButton, async () => {
    error.show("");
    if (hasReport && !window.confirm(`重新对账 ${billDate}？将重新下载微信账单并生成新的对账结果（上次的差异任务会按新结果关闭或保留）。`)) {
      return;
    }
    try {
      const report = await call("POST", "/api/admin/reconciliations", { body: { bill_date: billDate } });
      if (!ctx.alive()) return;
      flash(`对账${report.status_label}`);
      await load();
    } catch (err) {
      error.show(errorText(err));
      if (err.code === "BILL_HASH_MISMATCH") await load();  // the refused attempt is on the record
    }
  }));
  csv.addEventListener("click", () => busy(csv, async () => {
    error.show("");
    try {
      const name = await download(`/api/admin/reconciliations/${seg(billDate)}/discrepancies`, { format: "csv" },
        `reconciliation-${billDate}.csv`);
      flash(`已下载 ${name}`);
    } catch (err) {
      error.show(errorText(err));
    }
  }));
  await load();
}

function reportCard(r) {
  if (r.status === "running") {
    return h("div", { class: "card", id: "recon-progress" },
      h("p", {}, statusPill(r), " ", h("strong", { id: "recon-progress-text" }, progressText(r))),
      h("p", { class: "muted small" }, "页面每 2 秒刷新一次，对账结束后显示结果。"));
  }
  if (r.status === "not_ready") {
    return h("div", { class: "card", id: "recon-not-ready" },
      h("p", {}, statusPill(r), " ", r.reason || "微信账单尚未生成"),
      h("p", { class: "muted small" }, "尚未对账：没有任何数字。账单生成后系统会自动重试，也可稍后手动重新对账。"));
  }
  const refused = r.refused
    ? h("p", { class: "note error", id: "recon-refused" },
      `${fmtTime(r.refused.at)} ${r.refused.by} 发起的对账下载的账单未通过 SHA1 校验（${r.refused.code || "—"}），已拒绝：`,
      r.status === "done" ? "以下为此前完成的对账结果。" : "没有采用其中任何数据。")
    : null;
  const rows = [
    ["状态", statusPill(r)],
    ["账单行数", `${r.lines_read}（支付 ${r.payment_lines}，退款 ${r.refund_lines}）`],
    ["一致", String(r.matched)],
    ["差异", String(r.discrepancies)],
    ["微信合计", `支付 ${yuan(r.theirs.payments)} · 退款 ${yuan(r.theirs.refunds)}`],
    ["本地合计", `支付 ${yuan(r.ours.payments)} · 退款 ${yuan(r.ours.refunds)}`],
    ["合计一致", r.totals_match == null ? "—" : (r.totals_match ? "是" : "否")],
    ["耗时", r.duration_ms == null ? "—" : `${r.duration_ms} ms`],
    ["完成时间", r.finished_at ? fmtTime(r.finished_at) : "—"],
  ];
  if (r.reason) rows.push(["原因", r.reason]);
  if (r.status === "running") rows.push(["已处理行数", dash(r.lines_done)]);
  if (r.deferred) rows.push(["待相邻日账单核对", String(r.deferred)]);
  if (r.applied) rows.push(["经微信查询补记", String(r.applied)]);
  if (r.resolved) rows.push(["上次差异已消除（任务已关闭）", String(r.resolved)]);
  for (const [appid, o] of Object.entries(r.other_apps || {})) {
    rows.push([`其他应用 ${appid}`, `${o.lines} 行 · 支付 ${yuan(o.payments)} · 退款 ${yuan(o.refunds)}（不对账）`]);
  }
  return h("div", { class: "card" }, refused,
    h("dl", { class: "fields" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("table", { class: "table", id: "recon-classes" },
      h("thead", {}, h("tr", {}, ["类型", "笔数", "金额"].map((t) => h("th", {}, t)))),
      h("tbody", {}, r.classes.map((c) => h("tr", { dataset: { class: c.class } },
        h("td", {}, c.label), h("td", {}, String(c.count)), h("td", {}, yuan(c.amount)))))));
}

function discrepancyCard(d) {
  const rows = [
    ["订单号", h("a", { href: `#/orders/${seg(d.order_no)}` }, d.order_no)],
    ["退款单号", d.refund_no ? h("a", { href: `#/orders/${seg(d.order_no)}`, class: "mono" }, d.refund_no) : "—"],
    ["本地金额", d.ours_amount == null ? "—" : yuan(d.ours_amount)],
    ["微信金额", d.theirs_amount == null ? "—" : yuan(d.theirs_amount)],
    ["本地状态", dash(d.ours_status)],
    ["微信状态", dash(d.theirs_status)],
    ["任务编号", h("span", { class: "mono" }, d.task_id)],
  ];
  return h("li", { class: "card task", dataset: { class: d.class, subject: d.refund_no || d.order_no } },
    h("div", { class: "refund-head" }, h("strong", {}, d.class_label),
      h("span", { class: "pill" }, d.kind === "refund" ? "退款" : "支付")),
    h("p", { class: "action-text" }, d.note || ""),
    h("dl", { class: "fields" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

// 对账: WeChat Pay's daily trade bill against our books. Dates with their status; a day's report
// with its discrepancies, linked to their orders; run or rerun a date; CSV export.
import { call, download, errorText, seg } from "./api.js";
import { busy, dash, flash, fmtTime, h, mount, note, pagedList, pill } from "./dom.js";
import { yuan } from "./money.js";
import { can } from "./session.js";

const PAGE_SIZE = 50;
const STATUS_KIND = { done: "ok", running: "warn", failed: "error", not_ready: "warn" };

export async function showReconciliations(ctx) {
  const list = h("div", { class: "list-body" });
  mount(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "对账")),
    h("p", { class: "muted" }, "每日与微信支付交易账单核对订单与退款。差异会生成“对账差异”人工任务。"),
    list);
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
  mount(list, h("table", { class: "table", id: "recon-table" },
    h("thead", {}, h("tr", {}, ["账单日期", "状态", "账单行数", "一致", "差异", "完成时间"].map((t) => h("th", {}, t)))),
    h("tbody", {}, data.items.map((r) => h("tr", { dataset: { date: r.bill_date } },
      h("td", {}, h("a", { href: `#/reconcile/${r.bill_date}` }, r.bill_date)),
      h("td", {}, r.status ? pill(r.status_label, STATUS_KIND[r.status]) : h("span", { class: "muted" }, r.status_label),
        r.overdue ? [" ", pill("逾期未对账", "error")] : null),
      h("td", {}, dash(r.lines_read)), h("td", {}, dash(r.matched)), h("td", {}, dash(r.discrepancies)),
      h("td", {}, r.finished_at ? fmtTime(r.finished_at) : "—"))))));
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

  const load = async () => {
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
    csv.disabled = false;
    runButton.textContent = "重新对账";
    mount(summary, reportCard(report));
    await loadList();
  };

  runButton.addEventListener("click", () => busy(runButton, async () => {
    error.show("");
    try {
      const report = await call("POST", "/api/admin/reconciliations", { body: { bill_date: billDate } });
      if (!ctx.alive()) return;
      flash(`对账${report.status_label}`);
      await load();
    } catch (err) {
      error.show(errorText(err));
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
  const rows = [
    ["状态", pill(r.status_label, STATUS_KIND[r.status])],
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
  return h("div", { class: "card" },
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

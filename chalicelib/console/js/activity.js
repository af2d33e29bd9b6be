// 操作记录: what an operator created, approved, rejected and paid offline over Beijing days
// (GET /api/admin/activity; CSV with data.export). And the header's allowance line: the signed-in
// operator's limits and today's remaining allowance, asked again on every page.
import { call, download, errorText, seg } from "./api.js";
import { busy, dash, flash, fmtTime, h, mount, note, pagedList, pill } from "./dom.js";
import { REFUND_KIND } from "./orders.js";
import { session, can } from "./session.js";

const PAGE_SIZE = 50;

function beijingToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());
}

/** The header's line: 单笔上限, 今日已用 / 额度, 今日剩余 (GET /api/admin/me, asked again on each
 * page so it follows the refunds just made); nav links needing a permission the operator lacks
 * are hidden. */
export async function showAllowance(alive) {
  const line = document.getElementById("allowance");
  let me;
  try {
    me = await call("GET", "/api/admin/me");
  } catch {
    return; // the page itself says what went wrong
  }
  if (!alive()) return;
  session.set(me);
  for (const link of document.querySelectorAll("#nav [data-permission]")) {
    link.hidden = !can(link.dataset.permission);
  }
  const l = me.limits;
  if (!l) return;
  line.replaceChildren(
    h("span", {}, `单笔上限 ¥${l.refund_limit_yuan}`), " · ",
    h("span", {}, `今日已用 ¥${l.daily_used_yuan} / ¥${l.daily_limit_yuan}`), " · ",
    h("strong", { id: "allowance-remaining" }, `今日剩余 ¥${l.daily_remaining_yuan}`));
  line.title = `北京时间 ${l.day} 的额度`;
  line.hidden = false;
}

const COLUMNS = ["时间", "操作", "退款单号", "订单号", "金额", "退款状态", "来源", "说明"];

function activityTable(items) {
  const cell = (i, ...content) => h("td", { dataset: { label: COLUMNS[i] } }, ...content);
  return h("div", { class: "table-wrap" }, h("table", { class: "orders", id: "activity-table" },
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((a) => h("tr", { dataset: { refund: a.refund_no, action: a.action } },
      cell(0, fmtTime(a.at)),
      cell(1, a.action_label),
      cell(2, h("span", { class: "mono" }, a.refund_no)),
      cell(3, h("a", { href: `#/orders/${seg(a.order_no)}` }, a.order_no)),
      cell(4, h("span", { class: "num" }, `¥${a.amount_yuan}`)),
      cell(5, pill(a.status_label, REFUND_KIND[a.status])),
      cell(6, dash(a.origin_label)),
      cell(7, dash(a.detail)))))));
}

export async function showActivity(ctx, query) {
  const me = session.get();
  const today = beijingToday();
  const filters = {
    operator: (query.get("operator") || me?.subject || "").trim(),
    from: query.get("from") || today,
    to: query.get("to") || query.get("from") || today,
  };
  const input = (name, label, attrs) => h("label", { class: "field" }, h("span", {}, label),
    h("input", { name, id: `activity-${name}`, value: filters[name], autocomplete: "off", ...attrs }));
  const form = h("form", { class: "filters", id: "activity-filters" },
    input("operator", "操作员", { required: true, placeholder: "操作员编号" }),
    input("from", "日期从", { type: "date", required: true }),
    input("to", "至", { type: "date", required: true }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "查询")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params = new URLSearchParams();
    for (const name of ["operator", "from", "to"]) {
      const value = String(data.get(name) || "").trim();
      if (value) params.set(name, value);
    }
    ctx.navigate(`#/activity?${params}`);
  });
  const error = note();
  const csv = h("button", { type: "button", id: "activity-csv" }, "导出 CSV");
  const list = h("div", { class: "list-body" });
  mount(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "操作记录"), can("data.export") ? csv : null),
    form, error,
    h("p", { class: "muted small" }, "创建、批准、拒绝退款与线下付款，按北京时间的日期查询（一次最多 92 天）。"),
    list);
  csv.addEventListener("click", () => busy(csv, async () => {
    error.show("");
    try {
      const name = await download("/api/admin/activity", { ...filters, format: "csv" }, "activity.csv");
      flash(`已下载 ${name}`);
    } catch (err) {
      error.show(errorText(err));
    }
  }));
  const load = pagedList(ctx, list, {
    fetchPage: (cursor) => call("GET", "/api/admin/activity", { query: { ...filters, limit: PAGE_SIZE, cursor } }),
    render: activityTable,
    empty: () => "这段时间没有操作记录",
    errorText,
  });
  await load();
}

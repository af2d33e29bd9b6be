// 退款查询: every refund, by status (all nine), operator, Beijing day range and amount; WeChat's
// refund id and the cash/coupon split on each; CSV export (GET /api/admin/pay/refunds).
import { call, download, errorText, seg } from "./api.js";
import { choices } from "./catalogue.js";
import { busy, dash, flash, fmtTime, h, mount, note, pagedList, pill } from "./dom.js";
import { parseYuan, yuan } from "./money.js";
import { REFUND_KIND } from "./orders.js";
import { can } from "./session.js";

const PAGE_SIZE = 20;
const FIELDS = ["status", "operator", "from", "to", "min_yuan", "max_yuan"];

function filtersFrom(query) {
  return Object.fromEntries(FIELDS.map((name) => [name, (query.get(name) || "").trim()]));
}

/** The API's query from the page's filters; {error} when an amount cannot be read. */
function apiQuery(filters) {
  const q = {};
  for (const name of ["status", "operator", "from", "to"]) if (filters[name]) q[name] = filters[name];
  for (const [field, param, title] of [["min_yuan", "min_amount", "最小金额"], ["max_yuan", "max_amount", "最大金额"]]) {
    if (!filters[field]) continue;
    const parsed = parseYuan(filters[field]);
    if (parsed.error) return { error: `${title}：${parsed.error}` };
    q[param] = parsed.fen;
  }
  return { query: q };
}

function field(label, control) {
  return h("label", { class: "field" }, h("span", {}, label), control);
}

const COLUMNS = ["商户退款单号", "微信退款单号", "订单号", "用户", "状态", "退款金额", "退至用户", "优惠券部分",
  "发起人", "申请时间"];

function refundTable(items) {
  const cell = (i, ...content) => h("td", { dataset: { label: COLUMNS[i] } }, ...content);
  const money = (fen) => (fen === null || fen === undefined ? "—" : h("span", { class: "num" }, yuan(fen)));
  return h("div", { class: "table-wrap" }, h("table", { class: "orders", id: "refund-table" },
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((r) => h("tr", { dataset: { refund: r.refund_no, status: r.status } },
      cell(0, h("span", { class: "mono" }, r.refund_no)),
      cell(1, h("span", { class: "mono" }, dash(r.wechat_refund_id))),
      cell(2, h("a", { href: `#/orders/${seg(r.order_no)}` }, r.order_no)),
      cell(3, r.user ? r.user.display_name : r.user_id),
      cell(4, pill(r.status_label, REFUND_KIND[r.status])),
      cell(5, money(r.amount)),
      cell(6, money(r.payer_refund)),
      cell(7, money(r.coupon_refund)),
      cell(8, dash(r.created_by)),
      cell(9, fmtTime(r.created_at)))))));
}

export async function showRefunds(ctx, query) {
  const filters = filtersFrom(query);
  const input = (name, attrs) => h("input", { name, id: `refund-filter-${name}`, value: filters[name],
    autocomplete: "off", ...attrs });
  const form = h("form", { class: "filters", id: "refund-filters" },
    field("退款状态", h("select", { name: "status", id: "refund-filter-status" },
      h("option", { value: "" }, "全部"),
      choices("RefundStatus").map(([code, text]) => h("option", { value: code, selected: code === filters.status },
        text)))),
    field("发起人", input("operator", { placeholder: "操作员编号" })),
    field("申请日期从", input("from", { type: "date" })),
    field("至", input("to", { type: "date" })),
    field("最小金额（元）", input("min_yuan", { inputmode: "decimal", placeholder: "如 10.00" })),
    field("最大金额（元）", input("max_yuan", { inputmode: "decimal" })),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "查询"),
      h("button", { type: "button", onclick: () => ctx.navigate("#/refunds") }, "重置")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params = new URLSearchParams();
    for (const name of FIELDS) {
      const value = String(data.get(name) || "").trim();
      if (value) params.set(name, value);
    }
    ctx.navigate(`#/refunds${params.toString() ? `?${params}` : ""}`);
  });
  const error = note();
  const list = h("div", { class: "list-body" });
  const csv = h("button", { type: "button", id: "refunds-csv" }, "导出 CSV");
  mount(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "退款查询"), can("data.export") ? csv : null),
    form, error,
    h("p", { class: "muted small" }, "“已提交”为等待提交微信的退款（含被暂缓的）；金额为退款金额，退至用户与优惠券部分以微信返回为准。"),
    list);
  const built = apiQuery(filters);
  if (built.error) {
    error.show(built.error);
    return;
  }
  csv.addEventListener("click", () => busy(csv, async () => {
    error.show("");
    try {
      const name = await download("/api/admin/pay/refunds", { ...built.query, format: "csv" }, "refunds.csv");
      flash(`已下载 ${name}`);
    } catch (err) {
      error.show(errorText(err));
    }
  }));
  const load = pagedList(ctx, list, {
    fetchPage: (cursor) => call("GET", "/api/admin/pay/refunds", { query: { ...built.query, limit: PAGE_SIZE, cursor } }),
    render: refundTable,
    empty: () => "没有符合条件的退款",
    errorText,
  });
  await load();
}

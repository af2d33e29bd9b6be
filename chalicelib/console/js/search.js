// The one search box in the header (GET /api/admin/search): any number staff are given, or a
// player's id, nickname or phone. Results link to the order.
import { call, errorText, seg } from "./api.js";
import { dash, fmtTime, h, latest, mount, note, pill } from "./dom.js";
import { yuan } from "./money.js";
import { REFUND_KIND, orderTable } from "./orders.js";

/** Wire the header's search form: it goes to #/search?q=… */
export function bindSearchBox(navigate) {
  const form = document.getElementById("search-form");
  const input = document.getElementById("search-input");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = input.value.trim();
    if (q) navigate(`#/search?q=${encodeURIComponent(q)}`);
    else input.focus();
  });
}

const REFUND_COLUMNS = ["商户退款单号", "微信退款单号", "订单号", "用户", "状态", "金额", "申请时间", "匹配"];

function refundTable(items) {
  const cell = (i, ...content) => h("td", { dataset: { label: REFUND_COLUMNS[i] } }, ...content);
  return h("div", { class: "table-wrap" }, h("table", { class: "orders", id: "search-refunds" },
    h("thead", {}, h("tr", {}, REFUND_COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((r) => h("tr", { dataset: { refund: r.refund_no } },
      cell(0, r.refund_no),
      cell(1, dash(r.wechat_refund_id)),
      cell(2, h("a", { href: `#/orders/${seg(r.order_no)}` }, r.order_no)),
      cell(3, r.user ? r.user.display_name : "—"),
      cell(4, pill(r.status_label, REFUND_KIND[r.status])),
      cell(5, h("span", { class: "num" }, yuan(r.amount))),
      cell(6, fmtTime(r.created_at)),
      cell(7, r.matched_by_label))))));
}

function section(name, title, count, content) {
  return h("section", { class: "search-group", dataset: { results: name }, "aria-label": title },
    h("h2", {}, `${title}（${count}）`), content);
}

export async function showSearch(ctx, query) {
  const q = (query.get("q") || "").trim();
  const input = document.getElementById("search-input");
  if (input && input.value.trim() !== q) input.value = q;
  const body = h("div", { id: "search-results" }, h("p", { class: "muted" }, "搜索中…"));
  mount(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "搜索结果")), body);
  if (!q) {
    mount(body, h("p", { class: "empty" }, "请输入订单号、微信支付单号、退款单号、玩家 ID、昵称或手机号"));
    return;
  }
  const current = latest(ctx)();
  let found;
  try {
    found = await call("GET", "/api/admin/search", { query: { q } });
  } catch (err) {
    if (!current()) return;
    const error = note();
    mount(body, error);
    error.show(errorText(err));
    return;
  }
  if (!current()) return;
  if (!found.count) {
    mount(body, h("p", { class: "empty", id: "search-empty" },
      `没有找到“${found.q}”：请核对号码（精确匹配，不支持部分号码）`));
    return;
  }
  const parts = [h("p", { class: "muted", id: "search-count" }, `“${found.q}”共找到 ${found.count} 项`)];
  if (found.orders.length) {
    const table = orderTable(found.orders);
    table.querySelector("table").id = "search-orders";
    for (const o of found.orders) {
      const row = table.querySelector(`tr[data-order="${CSS.escape(o.order_no)}"]`);
      row?.querySelector("td").append(" ", h("span", { class: "pill info" }, `按${o.matched_by_label}`));
    }
    parts.push(section("orders", "订单", found.orders.length, table));
  }
  if (found.refunds.length) parts.push(section("refunds", "退款", found.refunds.length, refundTable(found.refunds)));
  for (const user of found.users) {
    const title = `玩家 ${user.display_name}（${user.user_id}）· 按${user.matched_by_label}匹配`;
    const orders = user.orders.length ? orderTable(user.orders) : h("p", { class: "empty" }, "该玩家没有订单");
    parts.push(h("section", { class: "search-group", dataset: { results: "user", user: user.user_id },
      "aria-label": title },
    h("h2", {}, title),
    h("p", {}, h("a", { href: `#/orders?user_id=${encodeURIComponent(user.user_id)}` }, "查看该玩家的全部订单")),
    orders));
  }
  mount(body, ...parts);
}

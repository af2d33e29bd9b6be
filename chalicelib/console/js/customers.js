// Customer view: one player's refunds and applications over all their orders, newest first, each
// with its timeline (every status change, when, by whom), and a guardian's claim where there is one.
import { call, errorText, seg } from "./api.js";
import { dash, fmtTime, h, mount, pagedList, pill } from "./dom.js";
import { yuan } from "./money.js";

const PAGE_SIZE = 20;

export async function showCustomer(ctx, userId) {
  const input = h("input", { name: "user_id", id: "customer-user-id", value: userId || "", placeholder: "如 u1001",
    autocomplete: "off", "aria-label": "用户 ID" });
  const form = h("form", { class: "filters", id: "customer-form" }, h("label", { for: "customer-user-id" }, "用户 ID"),
    input, h("button", { type: "submit", class: "primary" }, "查看"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value) ctx.navigate(`#/customers/${seg(value)}`);
  });
  const title = h("h1", {}, "客户");
  const list = h("div", { class: "list-body" });
  mount(ctx.main, h("div", { class: "page-head" }, title), form, list);
  if (!userId) {
    mount(list, h("p", { class: "muted" }, "输入用户 ID，查看该用户的全部退款及其时间线。"));
    return;
  }
  const load = pagedList(ctx, list, {
    fetchPage: async (cursor) => {
      const page = await call("GET", `/api/admin/users/${seg(userId)}/refunds`, { query: { limit: PAGE_SIZE, cursor } });
      title.textContent = `客户 · ${page.user.display_name}`;
      return page;
    },
    render: (items) => h("ol", { class: "customer-refunds", id: "customer-refunds" }, items.map(refundCard)),
    empty: () => "该用户没有退款记录",
    errorText,
  });
  await load();
}

function refundCard(r) {
  return h("li", { class: "card", dataset: { refund: r.refund_no } },
    h("div", { class: "refund-head" },
      h("strong", { class: "num" }, yuan(r.amount)),
      pill(r.status_label, "info"),
      h("span", { class: "muted" }, r.claim ? r.claim.type_label : r.origin_label),
      h("span", { class: "muted" }, fmtTime(r.created_at))),
    h("dl", { class: "fields" },
      h("dt", {}, "订单号"), h("dd", {}, h("a", { href: `#/orders/${seg(r.order_no)}` }, r.order_no)),
      h("dt", {}, "退款单号"), h("dd", { class: "mono" }, r.refund_no),
      h("dt", {}, "原因"), h("dd", {}, dash(r.reason))),
    h("ol", { class: "timeline", dataset: { timeline: r.refund_no } }, (r.events || []).map((e) => h("li", {},
      h("span", { class: "muted" }, fmtTime(e.at)), " ",
      e.from_label ? `${e.from_label} → ${e.to_label}` : e.to_label,
      e.detail ? ` · ${e.detail}` : "",
      h("span", { class: "muted" }, ` · ${dash(e.actor)}`)))));
}

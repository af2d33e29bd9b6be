// Order list (filters, cursor pages) and order detail (blocks, refund records, polling).
import { call, errorText, seg } from "./api.js";
import { block, dash, fields, fmtTime, h, latest, mount, note, pill } from "./dom.js";
import { actorName, choices, group } from "./catalogue.js";
import { yuan } from "./money.js";
import { openAbnormalDialog } from "./abnormal-dialog.js";
import { openCancelOfflineDialog, openOfflinePayoutDialog } from "./offline-dialog.js";
import { openRefundDialog } from "./refund-dialog.js";
import { can } from "./session.js";

const PAGE_SIZE = 20;
const POLL_MS = 2000;
// refunds whose outcome is WeChat's to give (chalicelib/domain/refunds.py): the page follows them
const AWAITING_WECHAT = group("AWAITING_WECHAT");

// Pages already visited for the current filters, so "上一页" and coming back from a
// detail keep their place: cursors[i] opens page i.
const listState = { key: null, cursors: [null], page: 0 };

function filtersFrom(query) {
  return {
    status: query.get("status") || "",
    source_type: query.get("source_type") || "",
    user_id: (query.get("user_id") || "").trim(),
    from: query.get("from") || "",
    to: query.get("to") || "",
  };
}

function select(name, label, options, value) {
  return h("label", { class: "field" }, h("span", {}, label),
    h("select", { name, id: `filter-${name}` },
      h("option", { value: "" }, "全部"),
      options.map(([code, text]) => h("option", { value: code, selected: String(code) === value }, text))));
}

export async function showOrders(ctx, query) {
  const filters = filtersFrom(query);
  const key = JSON.stringify(filters);
  if (listState.key !== key) Object.assign(listState, { key, cursors: [null], page: 0 });

  const form = h("form", { class: "filters", id: "order-filters" },
    select("status", "订单状态", choices("OrderStatus"), filters.status),
    select("source_type", "来源", choices("SourceType"), filters.source_type),
    h("label", { class: "field" }, h("span", {}, "用户ID"),
      h("input", { name: "user_id", id: "filter-user_id", value: filters.user_id, placeholder: "如 u1001",
        autocomplete: "off" })),
    h("label", { class: "field" }, h("span", {}, "下单日期从"),
      h("input", { type: "date", name: "from", id: "filter-from", value: filters.from })),
    h("label", { class: "field" }, h("span", {}, "至"),
      h("input", { type: "date", name: "to", id: "filter-to", value: filters.to })),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "查询"),
      h("button", { type: "button", onclick: () => ctx.navigate("#/orders") }, "重置")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params = new URLSearchParams();
    for (const name of ["status", "source_type", "user_id", "from", "to"]) {
      const value = String(data.get(name) || "").trim();
      if (value) params.set(name, value);
    }
    ctx.navigate(`#/orders${params.toString() ? `?${params}` : ""}`);
  });

  const body = h("div", { class: "list-body" }, h("p", { class: "muted" }, "加载中…"));
  mount(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "订单")), form, body);

  const begin = latest(ctx);
  const load = async () => {
    const current = begin();
    const error = note();
    let page;
    try {
      page = await call("GET", "/api/admin/orders", {
        query: { ...filters, limit: PAGE_SIZE, cursor: listState.cursors[listState.page] },
      });
    } catch (err) {
      if (!current()) return;
      mount(body, error);
      error.show(errorText(err));
      return;
    }
    if (!current()) return;
    listState.cursors[listState.page + 1] = page.next_cursor || undefined;
    const prev = h("button", { type: "button", id: "page-prev", disabled: listState.page === 0 }, "上一页");
    const next = h("button", { type: "button", id: "page-next", disabled: !page.next_cursor }, "下一页");
    prev.addEventListener("click", () => { listState.page -= 1; load(); });
    next.addEventListener("click", () => { listState.page += 1; load(); });
    mount(body,
      page.items.length ? orderTable(page.items) : h("p", { class: "empty" }, "没有符合条件的订单"),
      h("div", { class: "pager" }, prev, h("span", { class: "muted", id: "page-no" }, `第 ${listState.page + 1} 页`),
        next));
  };
  await load();
}

const COLUMNS = ["订单号", "用户", "订单状态", "来源", "发货状态", "活动", "实付金额", "已退款", "退款中", "可退余额",
  "下单时间"];

export function orderTable(items) {
  const cell = (i, ...content) => h("td", { dataset: { label: COLUMNS[i] } }, ...content);
  return h("div", { class: "table-wrap" }, h("table", { class: "orders", id: "order-table" },
    h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((o) => h("tr", { dataset: { order: o.order_no } },
      cell(0, h("a", { href: `#/orders/${seg(o.order_no)}` }, o.order_no)),
      cell(1, userText(o.user)),
      cell(2, pill(o.status_label, `order-${o.status}`)),
      cell(3, dash(o.source_type_label)),
      cell(4, dash(o.shipping_status_label)),
      cell(5, dash(o.activity_name)),
      cell(6, h("span", { class: "num" }, yuan(o.actual_amount))),
      cell(7, h("span", { class: "num" }, yuan(o.refunded_amount))),
      cell(8, h("span", { class: "num" }, yuan(o.reserved_amount))),
      cell(9, refundableNow(o)),
      cell(10, fmtTime(o.created_at)))))));
}

/** What can really be refunded now (the server's figure), and why nothing can when it says so. */
function refundableNow(o) {
  const amount = h("span", { class: "num" }, yuan(o.refundable_now));
  if (!o.refund_blocked || !o.refundable_amount) return amount;
  return h("span", { class: "refundable-now" }, amount, " ",
    h("span", { class: "small muted", dataset: { blocked: o.refund_blocked.code } }, o.refund_blocked.message));
}

function userText(user) {
  if (!user) return "—";
  return user.display_name || user.user_id;
}

// ------------------------------------------------------------------ detail

export async function showOrderDetail(ctx, orderNo) {
  mount(ctx.main, h("p", { class: "muted" }, "加载中…"));
  let timer = null;
  const begin = latest(ctx);
  const refresh = async () => {
    clearTimeout(timer);
    const current = begin();  // a poll and a refresh after an action may overlap: the later one renders
    let detail;
    try {
      detail = await call("GET", `/api/admin/orders/${seg(orderNo)}`);
    } catch (err) {
      if (!current()) return;
      const error = note();
      mount(ctx.main, backLink(), error);
      error.show(errorText(err));
      return;
    }
    if (!current()) return;
    renderDetail(ctx, detail, refresh);
    if (needsPolling(detail)) schedule();
  };
  // A hidden tab skips its turns (without losing the schedule) until it is shown again.
  const schedule = () => {
    timer = setTimeout(() => {
      if (!ctx.alive()) return;
      if (document.visibilityState === "hidden") schedule();
      else refresh();
    }, POLL_MS);
  };
  await refresh();
}

/** Refresh while WeChat is still working on a refund or its restoration is pending. */
function needsPolling(detail) {
  return detail.refunds.some((r) => AWAITING_WECHAT.has(r.status)
    || (r.status === "success" && r.restoration_status === "pending"));
}

function backLink() {
  return h("p", {}, h("a", { href: "#/orders", class: "back" }, "← 返回订单列表"));
}

function renderDetail(ctx, d, refresh) {
  const o = d.order;
  const actions = d.refund_actions;
  const button = can("refunds.create") ? h("button", {
    type: "button", id: "refund-button", class: "primary", disabled: !actions.can_refund,
  }, actions.button_label || "退款") : null;
  button?.addEventListener("click", () => openRefundDialog(o, actions, refresh));
  const why = actions.why_not
    ? h("span", { class: "why-not", id: "refund-why-not" }, actions.why_not.message || "当前不可退款")
    : null;
  const approval = actions.can_refund && actions.requires_approval
    ? h("span", { class: "hint", id: "refund-approval" }, `${actions.approval_reasons.join("；")}，提交后进入审核`)
    : null;

  mount(ctx.main,
    backLink(),
    h("div", { class: "page-head" },
      h("h1", {}, "订单 ", h("span", { class: "mono" }, o.order_no)),
      pill(o.status_label, `order-${o.status}`),
      h("div", { class: "refund-cta" }, button,
        actions.can_refund ? h("span", { class: "muted" }, `可退 ${yuan(actions.max_refundable)}`) : null,
        why, approval)),
    h("div", { class: "blocks" },
      orderBlock(o),
      block("activity", "活动", d.activity
        ? fields([["活动名称", d.activity.activity_name], ["活动ID", d.activity.activity_id]])
        : h("p", { class: "muted" }, "未参加活动")),
      block("payment", "付款", d.payment
        ? fields([["支付渠道", d.payment.channel_label], ["商户订单号", d.payment.out_trade_no],
          ["微信支付单号", d.payment.transaction_id], ["支付时间", fmtTime(d.payment.paid_at)],
          ["实付金额", yuan(o.actual_amount)]])
        : h("p", { class: "muted" }, "无付款信息")),
      itemsBlock(d.items),
      shippingBlock(d.shipping, d.virtual),
      block("points", "积分", fields([
        ["使用积分", d.points.points_used], ["抵扣金额", yuan(d.points.points_amount)],
        ["已退还积分", d.points.points_restored], ["优惠券", d.points.coupon_id || "未使用"],
      ])),
      lotteryBlock(d.lottery),
      refundsBlock(d.refunds, refresh)));
}

function orderBlock(o) {
  return block("order", "订单", fields([
    ["订单号", o.order_no],
    ["用户", o.user ? h("a", { href: `#/customers/${seg(o.user.user_id)}`, title: "客户视图：该用户的全部退款" },
      `${o.user.display_name}${o.user.nickname ? `（${o.user.user_id}）` : ""}`) : "—"],
    ["订单状态", o.status_label],
    ["来源", o.source_type_label],
    ["下单时间", fmtTime(o.created_at)],
    ["更新时间", fmtTime(o.updated_at)],
    ["商品总额", yuan(o.total_amount)],
    ["优惠", yuan(o.discount_amount)],
    ["实付金额", yuan(o.actual_amount)],
    ["已退款", yuan(o.refunded_amount)],
    ["退款中", o.reserved_amount ? yuan(o.reserved_amount) : undefined],
    ["待审核", o.requested_amount ? yuan(o.requested_amount) : undefined],
    ["可退余额", yuan(o.refundable_amount)],
    ["退款次数", o.refund_count],
  ]));
}

function itemsBlock(items) {
  if (!items.length) return block("items", "订单项", h("p", { class: "muted" }, "无订单项"));
  return block("items", "订单项", h("div", { class: "table-wrap" }, h("table", { class: "compact" },
    h("thead", {}, h("tr", {}, ["商品", "SKU", "数量", "单价", "小计"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((it) => h("tr", {},
      h("td", {}, it.name), h("td", { class: "mono" }, it.sku), h("td", { class: "num" }, it.qty),
      h("td", { class: "num" }, yuan(it.unit_price)), h("td", { class: "num" }, yuan(it.subtotal))))))));
}

function shippingBlock(s, v) {
  const parts = [];
  if (s) {
    parts.push(fields([
      ["发货状态", s.status_label], ["快递公司", s.carrier], ["运单号", s.tracking_no],
      ["发货时间", fmtTime(s.shipped_at)], ["签收时间", fmtTime(s.signed_at)],
      ["发货已取消", s.cancelled ? "是" : undefined], ["异常原因", s.exception_reason || undefined],
    ]));
  }
  if (v) {
    parts.push(h("h3", {}, "虚拟商品"), fields([
      ["商品", v.name], ["履约状态", v.is_consumed_label], ["可撤销", v.revocable ? "是" : "否"],
      ["已撤销", v.revoked ? `是（${fmtTime(v.revoked_at)}）` : "否"],
    ]));
  }
  if (!parts.length) parts.push(h("p", { class: "muted" }, "无需发货"));
  return block("shipping", "发货", ...parts);
}

function lotteryBlock(lottery) {
  if (!lottery) return block("lottery", "抽奖结果", h("p", { class: "muted" }, "非抽奖订单"));
  if (!lottery.length) return block("lottery", "抽奖结果", h("p", { class: "muted" }, "无抽奖记录"));
  return block("lottery", "抽奖结果", h("div", { class: "table-wrap" }, h("table", { class: "compact" },
    h("thead", {}, h("tr", {}, ["抽奖ID", "是否中奖", "等级", "奖品", "资产ID"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, lottery.map((x) => h("tr", {},
      h("td", { class: "mono" }, x.draw_id), h("td", {}, dash(x.is_winner_label)), h("td", {}, dash(x.level_label)),
      h("td", {}, dash(x.prize_name)), h("td", { class: "mono" }, dash(x.inventory_id))))))));
}

// ------------------------------------------------------------------ refund records

export const REFUND_KIND = {
  pending_review: "warn", submitted: "info", processing: "info", success: "ok",
  rejected: "muted", closed: "muted", abnormal: "bad", failed: "bad", offline_pending: "warn",
};

function refundsBlock(refunds, refresh) {
  if (!refunds.length) return block("refunds", "退款记录", h("p", { class: "muted" }, "暂无退款记录"));
  return block("refunds", "退款记录", h("ol", { class: "refunds", id: "refund-list" },
    refunds.map((r) => h("li", { class: "refund", dataset: { refund: r.refund_no, status: r.status } },
      h("div", { class: "refund-head" },
        h("strong", { class: "num" }, yuan(r.amount)),
        pill(r.status_label, REFUND_KIND[r.status]),
        h("span", { class: "muted" }, r.origin_label),
        h("span", { class: "muted" }, fmtTime(r.created_at))),
      fields([
        ["退款单号", h("span", { class: "mono" }, r.refund_no)],
        ["申请金额", r.requested_amount !== r.amount ? yuan(r.requested_amount) : undefined],
        // how WeChat paid it back (amount.payer_refund): cash to the player, the rest to the order's coupon
        ["退款构成", r.payer_refund != null ? `现金 ${yuan(r.payer_refund)} / 优惠券 ${yuan(r.coupon_refund)}` : undefined],
        ["原因", r.reason || "—"],
        ["需审批", r.review_reasons?.length ? r.review_reasons.join("；") : undefined],
        ["审核人", r.reviewer || undefined],
        ["拒绝原因", r.reject_reason || undefined],
        ["到账时间", r.success_time ? fmtTime(r.success_time) : undefined],
        ["入账账户", r.user_received_account || undefined],
        ["失败原因", r.failure_message || r.failure_code || undefined],
        ["线下退款原因", r.offline_reason_label || undefined],
        ["线下退款", r.offline_payout ? payoutText(r.offline_payout) : undefined],
        ["数据还原", restorationText(r)],
      ]),
      r.status === "abnormal" && can("refunds.resolve") ? abnormalAction(r, refresh) : null,
      r.status === "offline_pending" && can("refunds.resolve") ? offlineActions(r, refresh) : null,
      events(r.refund_no, r.events || [])))));
}

/** An abnormal refund (the card it was going to is gone) is sent again to another bank card. */
function abnormalAction(r, refresh) {
  const button = h("button", { type: "button", class: "primary", dataset: { action: "abnormal-refund" } },
    "发起异常退款");
  button.addEventListener("click", () => openAbnormalDialog(r, refresh));
  return h("div", { class: "refund-actions" }, button,
    h("span", { class: "hint" }, "原路退款失败（如用户银行卡已注销或冻结），需改退至银行卡"));
}

/** A refund WeChat cannot (or did not) pay to the player: paid outside WeChat and recorded here. */
function offlineActions(r, refresh) {
  const record = h("button", { type: "button", class: "primary", dataset: { action: "offline-payout" } },
    "登记线下退款");
  record.addEventListener("click", () => openOfflinePayoutDialog(r, refresh));
  // only money WeChat never moved may be given up; money returned to the merchant's card is the player's
  let cancel = null;
  if (r.offline_reason === "USER_ACCOUNT_ABNORMAL") {
    cancel = h("button", { type: "button", class: "danger", dataset: { action: "cancel-offline" } }, "取消线下退款");
    cancel.addEventListener("click", () => openCancelOfflineDialog(r, refresh));
  }
  return h("div", { class: "refund-actions" }, record, cancel,
    h("span", { class: "hint" }, "通过其他渠道付款给用户后登记"));
}

function payoutText(p) {
  return h("div", { class: "payout" }, fields([
    ["付款渠道", p.channel_label || p.channel],
    ["付款凭证号", h("span", { class: "mono" }, p.reference)],
    ["付款时间", fmtTime(p.paid_at)],
    ["登记人", p.recorded_by],
    ["备注", p.note || undefined],
  ]));
}

function restorationText(r) {
  if (r.status !== "success") return undefined;
  const label = r.restoration_status_label || "—";
  const outcome = r.restoration;
  if (!outcome) return label;
  const lines = [...(outcome.applied || [])];
  for (const task of outcome.manual_tasks || []) lines.push(`转人工：${task.type_label}（${task.action}）`);
  for (const text of outcome.notes || []) lines.push(text);
  return h("div", { class: "restoration" }, h("span", {}, label),
    lines.length ? h("ul", {}, lines.map((line) => h("li", {}, line))) : null);
}

// Which event histories are expanded survives the re-render of each poll.
const expanded = new Set();

function events(refundNo, list) {
  if (!list.length) return null;
  const el = h("details", { class: "events", open: expanded.has(refundNo) },
    h("summary", {}, `状态记录（${list.length}）`),
    h("ol", {}, list.map((e) => h("li", {},
      h("span", { class: "muted" }, fmtTime(e.at)), " ",
      e.from_label ? `${e.from_label} → ${e.to_label}` : e.to_label,
      e.detail ? ` · ${e.detail}` : "",
      h("span", { class: "muted" }, ` · ${dash(actorName(e.actor))}`)))));
  el.addEventListener("toggle", () => (el.open ? expanded.add(refundNo) : expanded.delete(refundNo)));
  return el;
}

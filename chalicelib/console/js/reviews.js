// Review queue: refunds under review, oldest first; approve (optionally less), reject, or withdraw
// one's own, as far as the server allows the signed-in operator (each refund's ``actions``).
import { call, errorText, seg } from "./api.js";
import { busy, dash, flash, fmtTime, h, mount, note, pagedList } from "./dom.js";
import { fenToYuan, parseYuan, yuan } from "./money.js";

const PAGE_SIZE = 50;

export async function showReviews(ctx) {
  const list = h("div", { class: "list-body" }, h("p", { class: "muted" }, "加载中…"));
  const reload = h("button", { type: "button", id: "reviews-reload" }, "刷新");
  reload.addEventListener("click", () => load());
  mount(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "退款审核"), reload),
    h("p", { class: "muted" }, "待审核的退款申请，按申请时间从早到晚排列。批准后立即向微信发起退款。"), list);

  const load = pagedList(ctx, list, {
    fetchPage: (cursor) => call("GET", "/api/admin/pay/refunds",
      { query: { status: "pending_review", order: "oldest", limit: PAGE_SIZE, cursor } }),
    render: (items) => h("ol", { class: "review-list", id: "review-list" }, items.map((r) => reviewCard(r))),
    empty: () => "没有待审核的退款申请",
    errorText,
  });
  await load();
}

// Rejecting by the refund's creator is withdrawing it (the same route; the server decides which).
const REJECTION = {
  reject: { verb: "拒绝", placeholder: "拒绝原因（必填）", missing: "请填写拒绝原因", flash: "已拒绝该退款申请" },
  withdraw: { verb: "撤回", placeholder: "撤回原因（必填）", missing: "请填写撤回原因", flash: "已撤回该退款" },
};

/** Why the signed-in operator may not do ``action`` here, in the server's words. */
function refusal(action, decision) {
  return h("p", { class: "why-not", dataset: { refusal: action } }, decision.reason);
}

/** The review controls the server allows (``extra``: more about the refund, shown above them) the signed-in operator (``r.actions``): approve, and
 * reject or, for the refund's creator, withdraw; the server's reason instead of a refused one. */
export function reviewCard(r, extra = null) {
  const actions = r.actions;
  const rejectAs = actions.withdraw.allowed ? "withdraw" : "reject";
  const rejection = REJECTION[rejectAs];
  const amount = h("input", { name: "approve_amount", inputmode: "decimal", autocomplete: "off",
    placeholder: fenToYuan(r.requested_amount), "aria-label": "批准金额（元）" });
  const rejectReason = h("input", { name: "reject_reason", maxlength: 200, autocomplete: "off",
    placeholder: rejection.placeholder, "aria-label": `${rejection.verb}原因` });
  const approve = h("button", { type: "button", class: "primary", dataset: { action: "approve" } }, "批准");
  const reject = h("button", { type: "button", class: "danger", dataset: { action: rejectAs } }, rejection.verb);
  const error = note();
  const card = h("li", { class: "card review", dataset: { refund: r.refund_no, order: r.order_no } },
    h("div", { class: "refund-head" },
      h("strong", { class: "num" }, yuan(r.requested_amount)),
      h("span", { class: "pill warn" }, r.status_label),
      h("span", { class: "muted" }, r.origin_label),
      h("span", { class: "muted" }, fmtTime(r.created_at))),
    h("dl", { class: "fields" },
      h("dt", {}, "订单号"), h("dd", {}, h("a", { href: `#/orders/${seg(r.order_no)}` }, r.order_no)),
      h("dt", {}, "退款单号"), h("dd", { class: "mono" }, r.refund_no),
      h("dt", {}, "用户"), h("dd", { title: r.user?.user_id || r.user_id || null }, dash(r.user?.display_name || r.user_id)),
      h("dt", {}, "发起人"), h("dd", { class: "mono", dataset: { field: "created_by" } }, dash(r.created_by)),
      h("dt", {}, "原因"), h("dd", {}, dash(r.reason)),
      r.review_reasons?.length ? [h("dt", {}, "需审批"), h("dd", {}, r.review_reasons.join("；"))] : null),
    extra,
    h("div", { class: "decide" },
      actions.approve.allowed
        ? h("label", { class: "inline" }, h("span", {}, "批准金额 ¥"), amount, approve)
        : refusal("approve", actions.approve),
      actions[rejectAs].allowed
        ? h("label", { class: "inline" }, rejectReason, reject)
        : refusal(rejectAs, actions[rejectAs])),
    error);

  const done = (refund, verb) => {
    card.classList.add("decided");
    mount(card, h("p", { class: "note ok" },
      `${r.refund_no}：${verb}，当前状态 ${refund.status_label}（${yuan(refund.amount)}）`));
  };

  approve.addEventListener("click", () => busy(approve, async () => {
    error.show("");
    const body = {};
    if (amount.value.trim()) {
      const parsed = parseYuan(amount.value);
      if (parsed.error) return error.show(parsed.error);
      if (parsed.fen > r.requested_amount) return error.show(`批准金额不能超过申请金额 ${yuan(r.requested_amount)}`);
      body.amount = parsed.fen;
    }
    const fen = body.amount ?? r.amount;
    if (!window.confirm(`批准退款 ${yuan(fen)}（订单 ${r.order_no}）？批准后立即向微信提交，退款不可撤销。`)) return;
    try {
      const refund = await call("POST", `/api/admin/pay/refunds/${seg(r.refund_no)}/approve`, { body });
      done(refund, "已批准");
      flash(`已批准退款 ${yuan(refund.amount)}`);
    } catch (err) {
      error.show(errorText(err));
    }
  }));

  reject.addEventListener("click", () => busy(reject, async () => {
    error.show("");
    const reason = rejectReason.value.trim();
    if (!reason) {
      error.show(rejection.missing);
      rejectReason.focus();
      return;
    }
    if (!window.confirm(`${rejection.verb}退款申请 ${yuan(r.amount)}（订单 ${r.order_no}）？`)) return;
    try {
      const refund = await call("POST", `/api/admin/pay/refunds/${seg(r.refund_no)}/reject`,
        { body: { reason } });
      done(refund, `已${rejection.verb}`);
      flash(rejection.flash);
    } catch (err) {
      error.show(errorText(err));
    }
  }));
  return card;
}

// The refund dialog: amount in yuan (exact fen conversion), reason, the live maximum and
// the rules, a preview of what will be restored, then the refund (or the application).
import { call, errorText, newIdempotencyKey } from "./api.js";
import { label } from "./catalogue.js";
import { flash, h, mount, note } from "./dom.js";
import { fenToYuan, parseYuan, yuan } from "./money.js";

const PREVIEW_DELAY_MS = 350;
// WeChat takes a refund reason of at most 80 bytes (UTF-8) and shows it to the player; the
// server counts the same way, after trimming and NFC, and refuses control characters.
const MAX_REASON_BYTES = 80;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function reasonBytes(text) {
  return new TextEncoder().encode(text.trim().normalize("NFC")).length;
}

export function openRefundDialog(order, actions, onDone) {
  const dialog = document.getElementById("refund-dialog");
  const idempotencyKey = newIdempotencyKey();
  const approval = actions.requires_approval;
  let max = actions.max_refundable;
  let previewed = null; // {fen} the shown preview belongs to
  let seq = 0;
  let timer = null;

  const amount = h("input", {
    id: "refund-amount", name: "amount", inputmode: "decimal", autocomplete: "off", required: true,
    value: "", placeholder: "输入退款金额", "aria-describedby": "refund-max",  // never the full amount by default
  });
  const reason = h("textarea", { id: "refund-reason", name: "reason", rows: 2,
    "aria-describedby": "refund-reason-count",
    placeholder: approval ? "说明退款原因，供审核参考（会显示给用户）" : "如 用户取消、商品缺货（会显示给用户）" });
  const reasonCount = h("span", { id: "refund-reason-count", class: "muted small" });
  const reasonError = note();
  reasonError.id = "refund-reason-error";
  const maxText = h("span", { id: "refund-max" }, yuan(max));
  const amountError = note();
  const error = note();
  const preview = h("div", { class: "preview", id: "refund-preview", "aria-live": "polite" });
  const confirm = h("button", { type: "submit", class: "primary", id: "refund-confirm", disabled: true },
    approval ? "提交申请" : "确认退款");
  const cancel = h("button", { type: "button", id: "refund-cancel" }, "取消");
  const fullButton = h("button", { type: "button", class: "link", id: "refund-full" }, "全额");

  const form = h("form", { method: "dialog", class: "refund-form" },
    h("h2", { id: "refund-dialog-title" }, `${approval ? "申请退款" : "退款"} · `,
      h("span", { class: "mono" }, order.order_no)),
    h("p", {}, "本单最多可退 ", maxText, `（实付 ${yuan(order.actual_amount)}，已退 ${yuan(order.refunded_amount)}）`),
    h("ul", { class: "rules" },
      h("li", {}, "金额以元为单位，最多两位小数；不能超过最多可退金额。"),
      h("li", {}, "部分退款按比例退还积分，商品、抽奖资产与优惠券保持不变；退完全部余额时撤销资产、取消未发货的发货并退回优惠券。"),
      h("li", {}, "已签收或虚拟商品已履约的订单需人工审批：提交后生成待审核申请，审核通过后才会退款。"),
      approval ? h("li", { class: "warn" }, `本单需审批：${actions.approval_reasons.join("；")}`) : null,
      h("li", { class: "warn", id: "refund-irreversible" }, "退款提交微信后不可撤销：款项原路退回用户，无法追回。")),
    h("label", { for: "refund-amount" }, "退款金额（元）"),
    h("div", { class: "amount-row" }, h("span", { class: "prefix" }, "¥"), amount, fullButton),
    amountError,
    h("label", { for: "refund-reason" }, "退款原因"),
    reason,
    h("div", { class: "reason-count" }, reasonCount),
    reasonError,
    h("h3", {}, "退款预览"),
    preview,
    h("div", { class: "actions" }, cancel, confirm),
    error);

  const setMax = (fen) => {
    max = fen;
    maxText.textContent = yuan(fen);
  };

  const current = () => ({ parsed: parseYuan(amount.value), reasonText: reason.value.trim() });

  /** What is wrong with the reason, or "" (the counter is updated on the way). */
  const reasonProblem = () => {
    const bytes = reasonBytes(reason.value);
    reasonCount.textContent = `${bytes} / ${MAX_REASON_BYTES} 字节`;
    reasonCount.classList.toggle("over", bytes > MAX_REASON_BYTES);
    if (CONTROL.test(reason.value)) return "退款原因不能包含换行、制表符等控制字符";
    if (bytes > MAX_REASON_BYTES) return `退款原因最多 ${MAX_REASON_BYTES} 字节（约 ${MAX_REASON_BYTES / 4}–${Math.floor(MAX_REASON_BYTES / 3)} 个汉字）`;
    return "";
  };

  const updateConfirm = () => {
    const { parsed } = current();
    const problem = reasonProblem();
    reasonError.show(problem);
    confirm.disabled = Boolean(problem) || !previewed || parsed.fen !== previewed.fen;
  };

  const runPreview = async () => {
    clearTimeout(timer);
    const mine = ++seq; // a newer preview (or edit) makes older answers irrelevant
    const { parsed } = current();
    previewed = null;
    updateConfirm();
    error.show("");
    if (parsed.error) {
      amountError.show(amount.value.trim() ? parsed.error : "");
      mount(preview, h("p", { class: "muted" }, "输入有效金额后显示预览"));
      return;
    }
    amountError.show("");
    // The server checks the amount against the live balance (and reports the current maximum).
    mount(preview, h("p", { class: "muted" }, "正在计算…"));
    try {
      const plan = await call("POST", "/api/admin/pay/refunds/preview",
        { body: { order_no: order.order_no, amount: parsed.fen } });
      if (mine !== seq) return;
      setMax(plan.max_refundable);
      mount(preview, planView(plan));
      confirm.textContent = plan.approval?.required ? "提交申请" : `确认退款 ${yuan(parsed.fen)}`;
      previewed = { fen: parsed.fen };
    } catch (err) {
      if (mine !== seq) return;
      if (Number.isInteger(err.details?.max_refundable)) setMax(err.details.max_refundable);
      mount(preview);
      amountError.show(errorText(err));
    }
    updateConfirm();
  };

  amount.addEventListener("input", () => {
    seq += 1;
    previewed = null;
    updateConfirm();
    clearTimeout(timer);
    timer = setTimeout(runPreview, PREVIEW_DELAY_MS);
  });
  fullButton.addEventListener("click", () => {
    amount.value = fenToYuan(max);
    runPreview();
  });
  cancel.addEventListener("click", () => dialog.close());
  // one line of text: Enter does not make a new line (the server refuses control characters)
  reason.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) event.preventDefault();
  });
  reason.addEventListener("input", updateConfirm);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { parsed, reasonText } = current();
    if (reasonProblem()) return updateConfirm();
    if (parsed.error || !previewed || parsed.fen !== previewed.fen) return;
    confirm.disabled = true;
    cancel.disabled = true;
    error.show("");
    try {
      const refund = await call("POST", "/api/admin/pay/refunds", {
        body: { order_no: order.order_no, amount: parsed.fen, reason: reasonText },
        headers: { "Idempotency-Key": idempotencyKey },
      });
      dialog.close();
      flash(refund.status === "pending_review"
        ? `退款申请已提交（${yuan(refund.amount)}），等待审核`
        : `退款已提交（${yuan(refund.amount)}），状态：${refund.status_label}`);
      onDone();
    } catch (err) {
      if (err.code === "NETWORK" || err.code === "TIMEOUT") {
        // the request may have reached the server: say so, and where to look
        error.replaceChildren(`结果未知：${errorText(err)}。退款可能已经提交，请先到 `,
          h("a", { href: "#/refunds", onclick: () => dialog.close() }, "退款列表"),
          ` 或本订单的退款记录查看；再次点击确认会沿用同一请求，不会重复退款。`);
        error.hidden = false;
      } else {
        error.show(errorText(err));
      }
      if (Number.isInteger(err.details?.max_refundable)) setMax(err.details.max_refundable);
      cancel.disabled = false;
      updateConfirm();
    }
  });

  dialog.addEventListener("close", () => clearTimeout(timer), { once: true });
  mount(dialog, form);
  dialog.showModal();
  amount.select();
  runPreview();
}

function planView(plan) {
  const rows = [
    ["本次退款", yuan(plan.amount)],
    ["退款后剩余可退", yuan(plan.remaining_after)],
    ["提交后状态", plan.resulting_status_label],
    ["是否全额", plan.fully_refunded ? "是（退完全部余额）" : "否（部分退款）"],
    ["退还积分", plan.points ? `${plan.points} 积分` : "无"],
  ];
  if (plan.coupon) rows.push(["优惠券", plan.coupon.restore ? `退回 ${plan.coupon.coupon_id}` : `不退回 ${plan.coupon.coupon_id}`]);
  if (plan.revoke_inventory.length) rows.push(["撤销抽奖资产", plan.revoke_inventory.join("、")]);
  if (plan.revoke_virtual) rows.push(["虚拟商品", "撤销履约"]);
  if (plan.cancel_shipment) rows.push(["发货", "取消发货"]);
  if (plan.mark_shipping_exception) rows.push(["发货", "标记为异常，待退货入库"]);
  return h("div", {},
    h("dl", { class: "fields" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    plan.manual_tasks.length
      ? h("div", { class: "tasks" }, h("p", {}, "需人工处理："),
        h("ul", {}, plan.manual_tasks.map((t) => h("li", {}, `${t.type_label}：${t.action}`))))
      : null,
    plan.notes.length ? h("ul", { class: "notes" }, plan.notes.map((n) => h("li", {}, n))) : null,
    approvalView(plan.approval),
    allowanceView(plan));
}

/** Before submitting: whether this refund goes to review, why, and who may approve it. */
function approvalView(approval) {
  if (!approval?.required) return null;
  const roles = (approval.approver_roles || []).map((role) => label("StaffRole", role)).join("、");
  return h("div", { class: "approval warn", id: "refund-approval-detail" },
    h("p", {}, "提交后生成待审核申请，审核通过后才会退款："),
    h("ul", {}, (approval.reasons || []).map((r) => h("li", {}, r.message))),
    roles ? h("p", { id: "refund-approver-roles" }, `可审批：${roles}（不能由发起人本人审批）`) : null);
}

function allowanceView(plan) {
  const a = plan.allowance;
  if (!a || a.fits !== false) return null;
  return h("p", { class: "warn", id: "refund-allowance" },
    `超过你今日的退款额度：今日已退 ${yuan(a.daily_used)}，剩余 ${yuan(a.daily_remaining)}（每日 ${yuan(a.daily_limit)}）`);
}

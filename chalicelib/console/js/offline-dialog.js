// Refunds paid outside WeChat (status offline_pending): record the payout an operator made
// (channel, reference, when), or cancel one WeChat never paid (the player's WeChat account
// could not receive: the amount becomes refundable again).
import { call, errorText, seg } from "./api.js";
import { choices } from "./catalogue.js";
import { flash, h, mount, note } from "./dom.js";
import { yuan } from "./money.js";

const MAX_REFERENCE = 64;

function open(form, focus) {
  const dialog = document.getElementById("offline-dialog");
  dialog.addEventListener("close", () => mount(dialog), { once: true });
  mount(dialog, form);
  dialog.showModal();
  focus.focus();
  return dialog;
}

/** Submit ``payload()`` (null: invalid, already reported) to ``path``, then close and refresh. */
function wire(form, { path, payload, confirm, cancel, error, done, onDone }) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.show("");
    const body = payload();
    if (!body) return;
    confirm.disabled = true;
    cancel.disabled = true;
    try {
      const refund = await call("POST", path, { body });
      document.getElementById("offline-dialog").close();
      flash(done(refund));
      onDone();
    } catch (err) {
      error.show(errorText(err));
      if (err?.code === "INVALID_REFUND_STATE") onDone(); // changed meanwhile: show it as it is now
    } finally {
      confirm.disabled = false;
      cancel.disabled = false;
    }
  });
  cancel.addEventListener("click", () => document.getElementById("offline-dialog").close());
}

/** A datetime-local value (the operator's clock) as ISO 8601 with a zone; "" stays "". */
function zoned(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** 登记线下退款: the operator paid refund ``r`` outside WeChat. */
export function openOfflinePayoutDialog(r, onDone) {
  const channel = h("select", { id: "offline-channel", name: "channel", required: true },
    h("option", { value: "" }, "请选择"),
    choices("PayoutChannel").map(([code, text]) => h("option", { value: code }, text)));
  const reference = h("input", { id: "offline-reference", name: "reference", required: true,
    maxlength: MAX_REFERENCE, autocomplete: "off", spellcheck: "false", placeholder: "转账流水号、收据号等" });
  const paidAt = h("input", { id: "offline-paid-at", name: "paid_at", type: "datetime-local", step: 1 });
  const noteInput = h("input", { id: "offline-note", name: "note", maxlength: 80, autocomplete: "off",
    placeholder: "可选" });
  const fieldError = note();
  fieldError.id = "offline-field-error";
  const error = note();
  error.id = "offline-error";
  const confirm = h("button", { type: "submit", class: "primary", id: "offline-confirm" }, "登记");
  const cancel = h("button", { type: "button", id: "offline-cancel" }, "取消");
  const form = h("form", { method: "dialog", class: "offline-form", autocomplete: "off", novalidate: true },
    h("h2", { id: "offline-dialog-title" }, "登记线下退款 · ", h("span", { class: "mono" }, r.refund_no)),
    h("p", {}, `退款金额 ${yuan(r.amount)}：${r.offline_reason_label || "需线下退款"}。`
      + "已通过其他渠道把款项付给用户后，在此登记，退款单变为“退款成功”。"),
    h("label", { for: "offline-channel" }, "付款渠道"), channel,
    h("label", { for: "offline-reference" }, "付款凭证号"), reference,
    h("label", { for: "offline-paid-at" }, "付款时间（可选，默认为登记时间）"), paidAt,
    h("label", { for: "offline-note" }, "备注"), noteInput,
    fieldError,
    h("div", { class: "actions" }, cancel, confirm),
    error);

  const invalid = (text, el) => {
    fieldError.show(text);
    el.focus();
    return null;
  };
  const payload = () => {
    fieldError.show("");
    const body = { channel: channel.value, reference: reference.value.trim() };
    if (!body.channel) return invalid("请选择付款渠道", channel);
    if (!body.reference) return invalid("请填写付款凭证号", reference);
    if (body.reference.length > MAX_REFERENCE) return invalid(`付款凭证号最多 ${MAX_REFERENCE} 个字符`, reference);
    const at = zoned(paidAt.value);
    if (at === null) return invalid("付款时间格式不正确", paidAt);
    if (at) {
      if (new Date(at) > new Date()) return invalid("付款时间不能晚于现在", paidAt);
      body.paid_at = at;
    }
    if (noteInput.value.trim()) body.note = noteInput.value.trim();
    return body;
  };
  wire(form, {
    path: `/api/admin/pay/refunds/${seg(r.refund_no)}/offline-payout`, payload, confirm, cancel, error, onDone,
    done: (refund) => `已登记线下退款（${refund.offline_payout?.channel_label || ""}），状态：${refund.status_label}`,
  });
  open(form, channel);
}

/** 取消线下退款: WeChat never paid refund ``r`` (the player's account could not receive). */
export function openCancelOfflineDialog(r, onDone) {
  const reason = h("input", { id: "offline-cancel-reason", name: "reason", required: true, maxlength: 80,
    autocomplete: "off", placeholder: "如 用户同意改为其他补偿" });
  const fieldError = note();
  fieldError.id = "offline-field-error";
  const error = note();
  error.id = "offline-error";
  const confirm = h("button", { type: "submit", class: "danger", id: "offline-confirm" }, "确认取消");
  const cancel = h("button", { type: "button", id: "offline-cancel" }, "返回");
  const form = h("form", { method: "dialog", class: "offline-form", autocomplete: "off", novalidate: true },
    h("h2", { id: "offline-dialog-title" }, "取消线下退款 · ", h("span", { class: "mono" }, r.refund_no)),
    h("p", {}, `微信未付出这笔退款（${r.offline_reason_label || "用户微信账户异常"}）。取消后退款单关闭，`
      + `${yuan(r.amount)} 重新计入可退余额。`),
    h("label", { for: "offline-cancel-reason" }, "取消原因"), reason,
    fieldError,
    h("div", { class: "actions" }, cancel, confirm),
    error);
  const payload = () => {
    fieldError.show("");
    const text = reason.value.trim();
    if (!text) {
      fieldError.show("请填写取消原因");
      reason.focus();
      return null;
    }
    return { reason: text };
  };
  wire(form, {
    path: `/api/admin/pay/refunds/${seg(r.refund_no)}/cancel-offline`, payload, confirm, cancel, error, onDone,
    done: (refund) => `已取消线下退款，状态：${refund.status_label}`,
  });
  open(form, reason);
}

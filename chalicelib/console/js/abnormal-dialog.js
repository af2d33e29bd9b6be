// The abnormal-refund dialog: a refund WeChat could not pay back (the player's card was
// cancelled or frozen) is sent again, to a bank card of the player or of the merchant.
// The card number and the holder's name live only in the form's inputs: never stored,
// never logged, wiped after each submit and when the dialog closes.
import { call, errorText, seg } from "./api.js";
import { label } from "./catalogue.js";
import { flash, h, mount, note } from "./dom.js";
import { yuan } from "./money.js";

const USER_CARD = "USER_BANK_CARD";
const MERCHANT_CARD = "MERCHANT_BANK_CARD";
// A few of WeChat Pay's bank type codes, as suggestions; any code can be typed.
const BANK_TYPES = [
  ["ICBC_DEBIT", "工商银行借记卡"], ["CCB_DEBIT", "建设银行借记卡"], ["ABC_DEBIT", "农业银行借记卡"],
  ["BOC_DEBIT", "中国银行借记卡"], ["COMM_DEBIT", "交通银行借记卡"], ["CMB_DEBIT", "招商银行借记卡"],
  ["PSBC_DEBIT", "邮储银行借记卡"], ["SPDB_DEBIT", "浦发银行借记卡"], ["CIB_DEBIT", "兴业银行借记卡"],
  ["CITIC_DEBIT", "中信银行借记卡"], ["CMBC_DEBIT", "民生银行借记卡"], ["CEB_DEBIT", "光大银行借记卡"],
];
const MAX_LEN = 64;
const destination = (type) => `退至${label("AbnormalRefundType", type)}`;

/** Open the dialog for refund ``r`` (status abnormal); ``onDone`` refreshes the order detail. */
export function openAbnormalDialog(r, onDone) {
  const dialog = document.getElementById("abnormal-dialog");
  const choice = (value, label, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "abnormal_type", value, checked }), h("span", {}, label));
  const input = (id, name, label, attrs) => [
    h("label", { for: id }, label),
    h("input", { id, name, required: true, maxlength: MAX_LEN, autocomplete: "off", spellcheck: "false", ...attrs }),
  ];

  const bankType = input("abnormal-bank-type", "bank_type", "银行类型",
    { list: "abnormal-bank-types", placeholder: "如 ICBC_DEBIT", autocapitalize: "characters" });
  const account = input("abnormal-bank-account", "bank_account", "银行卡号",
    { inputmode: "numeric", placeholder: "收款银行卡号" });
  const realName = input("abnormal-real-name", "real_name", "户名", { placeholder: "持卡人姓名" });
  const cardInputs = [bankType[1], account[1], realName[1]];
  const card = h("fieldset", { class: "card-fields", id: "abnormal-card" },
    h("legend", {}, "用户银行卡信息"), bankType, account, realName,
    h("datalist", { id: "abnormal-bank-types" }, BANK_TYPES.map(([code, name]) => h("option", { value: code }, name))),
    h("p", { class: "muted small" }, "卡号与户名只用于本次提交（加密后发给微信），不会保存。"));

  const fieldError = note();
  fieldError.id = "abnormal-field-error";
  const error = note();
  error.id = "abnormal-error";
  const confirm = h("button", { type: "submit", class: "primary", id: "abnormal-confirm" }, "提交");
  const cancel = h("button", { type: "button", id: "abnormal-cancel" }, "取消");
  const form = h("form", { method: "dialog", class: "abnormal-form", autocomplete: "off", novalidate: true },
    h("h2", { id: "abnormal-dialog-title" }, "发起异常退款 · ", h("span", { class: "mono" }, r.refund_no)),
    h("p", {}, `退款金额 ${yuan(r.amount)} 未能退回原支付账户（如用户银行卡已注销或冻结）。选择新的退款去向后重新发起，`
      + "提交后退款单变为“退款中”，到账后变为“退款成功”。"),
    h("div", { class: "choices", role: "radiogroup", "aria-label": "退款去向" },
      choice(USER_CARD, destination(USER_CARD), true), choice(MERCHANT_CARD, destination(MERCHANT_CARD), false)),
    card,
    h("p", { class: "muted small", id: "abnormal-merchant-hint", hidden: true },
      "退款将退至商户的银行账户，由商户线下转给用户。"),
    fieldError,
    h("div", { class: "actions" }, cancel, confirm),
    error);

  const kind = () => form.querySelector("input[name=abnormal_type]:checked").value;
  const wipe = () => { for (const el of cardInputs) el.value = ""; };
  const onChoice = () => {
    const user = kind() === USER_CARD;
    card.hidden = !user;
    form.querySelector("#abnormal-merchant-hint").hidden = user;
    if (!user) wipe(); // nothing of a card is sent (or kept) for the merchant's account
    fieldError.show("");
    error.show("");
  };
  for (const radio of form.querySelectorAll("input[name=abnormal_type]")) radio.addEventListener("change", onChoice);
  cancel.addEventListener("click", () => dialog.close());

  /** The request body, or null after showing what is missing. */
  const body = () => {
    const type = kind();
    if (type !== USER_CARD) return { type };
    const values = {
      bank_type: bankType[1].value.trim().toUpperCase(),
      bank_account: account[1].value.replace(/[\s-]/g, ""),
      real_name: realName[1].value.trim(),
    };
    const missing = [["bank_type", "银行类型"], ["bank_account", "银行卡号"], ["real_name", "户名"]]
      .filter(([name]) => !values[name]).map(([, label]) => label);
    if (missing.length) return invalid(`请填写${missing.join("、")}`, missing[0]);
    if (!/^[A-Z0-9_]+$/.test(values.bank_type)) return invalid("银行类型格式不正确，例如 ICBC_DEBIT", "银行类型");
    if (!/^\d{8,32}$/.test(values.bank_account)) return invalid("银行卡号应为 8–32 位数字", "银行卡号");
    if (values.real_name.length > MAX_LEN) return invalid("户名过长", "户名");
    return { type, ...values };
  };
  const invalid = (text, label) => {
    fieldError.show(text);
    const labels = { 银行类型: bankType[1], 银行卡号: account[1], 户名: realName[1] };
    labels[label]?.focus();
    return null;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fieldError.show("");
    error.show("");
    const payload = body();
    if (!payload) return;
    confirm.disabled = true;
    cancel.disabled = true;
    try {
      const refund = await call("POST", `/api/admin/pay/refunds/${seg(r.refund_no)}/abnormal-refund`,
        { body: payload });
      dialog.close();
      flash(`已发起异常退款（${destination(payload.type)}），`
        + `状态：${refund.status_label}`);
      onDone();
    } catch (err) {
      wipe(); // the card is typed again for another try, never kept around
      error.show(errorText(err));
      // someone else resolved it meanwhile: show the refund as it is now
      if (err?.code === "INVALID_REFUND_STATE") onDone();
    } finally {
      confirm.disabled = false;
      cancel.disabled = false;
    }
  });

  // Closing in any way (submit, 取消, Esc, sign-out) wipes the card and drops the form.
  dialog.addEventListener("close", () => {
    wipe();
    mount(dialog);
  }, { once: true });
  mount(dialog, form);
  dialog.showModal();
  bankType[1].focus();
}

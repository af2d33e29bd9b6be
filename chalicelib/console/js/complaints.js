// 投诉: WeChat Pay consumer complaints. The queue (nearest deadline first, with live countdowns
// and risk tags), one complaint with its order, the player's other complaints and refunds, the
// negotiation history and the order's draw records, and the reply / refund / reject / complete
// dialogs. Each button is there only when the server's ``actions`` allow it; else its reason.
import { call, errorText, seg } from "./api.js";
import { choices, label } from "./catalogue.js";
import { block, busy, dash, fields, flash, fmtTime, h, mount, note, pagedList, pill } from "./dom.js";
import { fenToYuan, parseYuan, yuan } from "./money.js";

const PAGE_SIZE = 50;
const MAX_IMAGES = 4;
const MAX_IMAGE_BYTES = 2 * 1024 * 1024;
const MAX_TEXT = 200;
const RISK_PILL = { overdue: "bad", near: "warn", on_time: "ok", done: "" };

/** Seconds to ``dueAt`` from now, negative once past; null without a deadline. */
function secondsLeft(dueAt) {
  if (!dueAt) return null;
  const due = Date.parse(dueAt);
  return Number.isNaN(due) ? null : Math.floor((due - Date.now()) / 1000);
}

/** "剩余 5 小时 02 分 09 秒" / "已超时 1 天 3 小时 00 分 05 秒". */
export function countdownText(seconds) {
  if (seconds === null) return "—";
  let rest = Math.abs(seconds);
  const days = Math.floor(rest / 86400);
  rest %= 86400;
  const hours = Math.floor(rest / 3600);
  rest %= 3600;
  const pad = (n) => String(n).padStart(2, "0");
  const text = `${days ? `${days} 天 ` : ""}${hours} 小时 ${pad(Math.floor(rest / 60))} 分 ${pad(rest % 60)} 秒`;
  return `${seconds < 0 ? "已超时" : "剩余"} ${text}`;
}

/** A countdown element that the page's ticker keeps current. */
function countdown(deadline) {
  const el = h("span", { class: "countdown num", dataset: { due: deadline?.due_at || "" } });
  el.textContent = deadline?.due_at ? countdownText(secondsLeft(deadline.due_at)) : "—";
  return el;
}

/** Update every countdown on the page once a second while the view is shown. */
function tick(ctx) {
  const timer = setInterval(() => {
    if (!ctx.alive()) {
      clearInterval(timer);
      return;
    }
    for (const el of ctx.main.querySelectorAll(".countdown[data-due]")) {
      if (!el.dataset.due) continue;
      const left = secondsLeft(el.dataset.due);
      el.textContent = countdownText(left);
      el.classList.toggle("late", left !== null && left < 0);
    }
  }, 1000);
}

function riskTags(c) {
  const tags = [pill(c.deadline.risk_label, RISK_PILL[c.deadline.risk])];
  for (const t of c.user_tags || []) tags.push(pill(t.label, t.code === "HIGH_RISK" ? "bad" : "info"));
  if ((c.user_complaint_times || 0) > 1) tags.push(pill(`第 ${c.user_complaint_times} 次投诉`, "warn"));
  if (c.incoming_user_response) tags.push(pill("用户有新留言", "warn"));
  return h("span", { class: "tags" }, tags);
}

// ---------------------------------------------------------------- the queue

export async function showComplaints(ctx, query) {
  const state = query.get("state") || "";
  const deadline = query.get("deadline") || "";
  const orderNo = query.get("order_no") || "";
  const stateSelect = h("select", { name: "state", id: "complaint-state" },
    h("option", { value: "" }, "未处理（全部）"),
    choices("ComplaintState").map(([code, text]) => h("option", { value: code, selected: code === state }, text)));
  const deadlineSelect = h("select", { name: "deadline", id: "complaint-deadline" },
    h("option", { value: "" }, "全部时限"),
    h("option", { value: "near", selected: deadline === "near" }, "即将超时或已超时"),
    h("option", { value: "overdue", selected: deadline === "overdue" }, "已超时"));
  const orderInput = h("input", { name: "order_no", value: orderNo, placeholder: "订单号", autocomplete: "off" });
  const form = h("form", { class: "filters", id: "complaint-filters" },
    h("label", { class: "field" }, h("span", {}, "状态"), stateSelect),
    h("label", { class: "field" }, h("span", {}, "时限"), deadlineSelect),
    h("label", { class: "field" }, h("span", {}, "订单号"), orderInput),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "查询")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (stateSelect.value) params.set("state", stateSelect.value);
    if (deadlineSelect.value) params.set("deadline", deadlineSelect.value);
    if (orderInput.value.trim()) params.set("order_no", orderInput.value.trim());
    ctx.navigate(`#/complaints${params.toString() ? `?${params}` : ""}`);
  });
  const list = h("div", { class: "list-body" });
  mount(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "消费者投诉")),
    h("p", { class: "muted" }, "微信支付消费者投诉：24 小时内首次回复，72 小时内处理完成；超时后微信可能直接从商户账户退款给用户。按时限从近到远排列（北京时间）。"),
    form, list);
  const load = pagedList(ctx, list, {
    fetchPage: (cursor) => call("GET", "/api/admin/complaints", {
      query: { state, deadline, order_no: orderNo, limit: PAGE_SIZE, cursor } }),
    render: (items) => queueTable(items),
    empty: () => "没有符合条件的投诉",
    errorText,
  });
  tick(ctx);
  await load();
}

function queueTable(items) {
  return h("div", { class: "table-wrap" }, h("table", { class: "orders", id: "complaint-queue" },
    h("thead", {}, h("tr", {}, ["时限", "剩余时间", "风险", "投诉单号", "问题", "申请退款", "订单号", "状态", "投诉时间"]
      .map((t) => h("th", {}, t)))),
    h("tbody", {}, items.map((c) => h("tr", { dataset: { complaint: c.complaint_id } },
      h("td", {}, dash(c.deadline.kind_label)),
      h("td", {}, countdown(c.deadline)),
      h("td", {}, riskTags(c)),
      h("td", {}, h("a", { href: `#/complaints/${seg(c.complaint_id)}`, class: "mono" }, c.complaint_id)),
      h("td", {}, dash(c.problem_type_label)),
      h("td", { class: "num" }, c.apply_refund_amount === null ? "—" : yuan(c.apply_refund_amount)),
      h("td", {}, c.order_no ? h("a", { href: `#/orders/${seg(c.order_no)}`, class: "mono" }, c.order_no) : "—"),
      h("td", {}, pill(c.state_label, c.state === "PROCESSED" ? "ok" : "warn")),
      h("td", {}, fmtTime(c.complaint_time)))))));
}

// ---------------------------------------------------------------- one complaint

export async function showComplaintDetail(ctx, complaintId) {
  mount(ctx.main, h("p", { class: "muted" }, "加载中…"));
  let c;
  try {
    c = await call("GET", `/api/admin/complaints/${seg(complaintId)}`);
  } catch (err) {
    if (!ctx.alive()) return;
    const error = note();
    mount(ctx.main, h("p", {}, h("a", { href: "#/complaints" }, "← 返回投诉列表")), error);
    error.show(errorText(err));
    return;
  }
  if (!ctx.alive()) return;
  renderDetail(ctx, c);
  tick(ctx);
}

function renderDetail(ctx, c) {
  const rerender = (fresh) => { if (ctx.alive()) renderDetail(ctx, fresh); };
  mount(ctx.main,
    h("p", {}, h("a", { href: "#/complaints" }, "← 返回投诉列表")),
    h("div", { class: "page-head" }, h("h1", {}, "投诉 ", h("span", { class: "mono" }, c.complaint_id)),
      pill(c.state_label, c.state === "PROCESSED" ? "ok" : "warn"), riskTags(c)),
    actionBar(c, rerender),
    block("complaint", "投诉内容", fields([
      ["问题类型", c.problem_type_label],
      ["投诉描述", c.detail],
      ["申请退款金额", c.apply_refund_amount === null ? "—" : yuan(c.apply_refund_amount)],
      ["投诉时间", fmtTime(c.complaint_time)],
      ["当前时限", c.deadline.kind_label ? `${c.deadline.kind_label}（截止 ${fmtTime(c.deadline.due_at)}）` : "—"],
      ["剩余时间", countdown(c.deadline)],
      ["首次回复时限", fmtTime(c.deadline.reply_due_at)],
      ["处理完成时限", fmtTime(c.deadline.resolve_due_at)],
      ["首次回复时间", fmtTime(c.first_reply_at)],
      ["用户手机号", c.payer_phone],
      ["该用户投诉次数", c.user_complaint_times],
      ["退款处理", c.refund_progress_label],
      ["退款单号", c.refund_no || c.entrusted_refund_no],
      ["拒绝原因", c.reject_reason],
    ])),
    block("order", "订单", c.order ? fields([
      ["订单号", h("a", { href: `#/orders/${seg(c.order.order_no)}`, class: "mono" }, c.order.order_no)],
      ["用户", c.user?.display_name],
      ["状态", c.order.status_label],
      ["实付", yuan(c.order.actual_amount)],
      ["已退", yuan(c.order.refunded_amount)],
      ["可退", yuan(c.order.refundable_amount)],
    ]) : h("p", { class: "muted" }, `订单 ${dash(c.order_no)} 不在本系统中`)),
    evidenceBlock(c.evidence),
    block("history", "协商历史", c.history.length ? h("ol", { class: "history", id: "complaint-history" },
      c.history.map((e) => h("li", {}, h("strong", {}, e.operate_type_label), " · ", dash(e.operator), " · ",
        fmtTime(e.operate_time), h("div", {}, dash(e.operate_details)),
        e.image_urls.length ? h("div", { class: "muted small" }, `图片 ${e.image_urls.length} 张`) : null)))
      : h("p", { class: "muted" }, "暂无")),
    block("actions-log", "本系统操作记录", c.actions_log.length ? h("ul", {}, c.actions_log.map((a) => h("li", {},
      `${fmtTime(a.at)} ${a.action_label} · ${a.actor} · ${a.status_label}`,
      a.result?.wechat_message ? `（微信：${a.result.wechat_message}）` : "",
      a.result?.wechat_state ? `，微信状态：${label("ComplaintState", a.result.wechat_state)}` : "")))
      : h("p", { class: "muted" }, "暂无")),
    block("refunds", "退款记录", refundsView(c)),
    block("other-complaints", "该用户的其他投诉", c.other_complaints.length ? h("ul", {}, c.other_complaints.map((o) =>
      h("li", {}, h("a", { href: `#/complaints/${seg(o.complaint_id)}`, class: "mono" }, o.complaint_id), " ",
        o.state_label, " · ", dash(o.problem_type_label), " · ", fmtTime(o.complaint_time))))
      : h("p", { class: "muted" }, "无")));
}

function refundsView(c) {
  const rows = c.refunds.map((r) => h("li", { dataset: { refund: r.refund_no } }, h("span", { class: "mono" }, r.refund_no),
    ` ${yuan(r.amount)} · ${r.status_label} · ${r.origin_label || r.origin} · ${fmtTime(r.created_at)}`));
  const others = c.player_orders.map((o) => h("li", {}, "其他订单 ",
    h("a", { href: `#/orders/${seg(o.order_no)}`, class: "mono" }, o.order_no), ` 已退 ${yuan(o.refunded_amount)}`));
  return rows.length || others.length ? h("ul", {}, rows, others) : h("p", { class: "muted" }, "无");
}

function evidenceBlock(evidence) {
  if (!evidence) return null;
  const draws = evidence.draws.length ? h("table", { class: "compact", id: "complaint-draws" },
    h("thead", {}, h("tr", {}, ["抽奖", "结果", "等级", "奖品", "抽奖时间", "奖品状态"].map((t) => h("th", {}, t)))),
    h("tbody", {}, evidence.draws.map((d) => h("tr", {}, h("td", { class: "mono" }, d.draw_id), h("td", {}, d.result_label),
      h("td", {}, dash(d.level_label)), h("td", {}, dash(d.prize_name)),
      h("td", {}, `${fmtTime(d.drawn_at)}${d.drawn_at_source === "payment" ? "（支付时间）" : ""}`),
      h("td", {}, dash(d.inventory_status_label))))))
    : h("p", { class: "muted" }, "该订单没有抽奖记录");
  const s = evidence.shipping;
  return block("evidence", "履约证据（抽奖与发货）", draws,
    fields([
      ["商品", evidence.items.map((i) => `${i.name} × ${i.qty}`).join("；")],
      ["支付时间", fmtTime(evidence.paid_at)],
      ["发货", s ? `${s.status_label}${s.carrier ? ` · ${s.carrier} ${s.tracking_no || ""}` : ""}` : undefined],
      ["发货时间", s ? fmtTime(s.shipped_at) : undefined],
      ["签收时间", s ? fmtTime(s.signed_at) : undefined],
      ["虚拟商品", evidence.virtual ? `${evidence.virtual.name} · ${evidence.virtual.is_consumed_label}` : undefined],
    ]));
}

// ---------------------------------------------------------------- actions

const ACTIONS = [
  ["reply", "回复用户", "primary"], ["refund", "同意退款", ""], ["reject", "拒绝退款", "danger"], ["complete", "处理完成", ""],
];

function actionBar(c, rerender) {
  const bar = h("div", { class: "decide", id: "complaint-actions" });
  for (const [action, text, kind] of ACTIONS) {
    const decision = c.actions[action];
    if (decision.allowed) {
      bar.append(h("button", { type: "button", class: kind, dataset: { action },
        onclick: () => openDialog(action, c, rerender) }, text));
    } else {
      bar.append(h("span", { class: "why-not muted", dataset: { refusal: action } }, `${text}：${decision.reason}`));
    }
  }
  return bar;
}

/** base64 of each chosen image (without the data: prefix), or an error in Chinese. */
async function readImages(input) {
  const files = Array.from(input.files || []);
  if (files.length > MAX_IMAGES) return { error: `最多 ${MAX_IMAGES} 张图片` };
  const out = [];
  for (const file of files) {
    if (!/\.(png|jpe?g|bmp)$/i.test(file.name)) return { error: `${file.name}：只支持 JPG、PNG、BMP 图片` };
    if (file.size > MAX_IMAGE_BYTES) return { error: `${file.name}：图片不能超过 2 MB` };
    const data = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    out.push(data);
  }
  return { images: out };
}

function openDialog(action, c, rerender) {
  const dialog = document.getElementById("complaint-dialog");
  const error = note();
  const confirm = h("button", { type: "submit", class: "primary", id: "complaint-confirm" }, "确认");
  const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "取消");
  const text = h("textarea", { id: "complaint-text", name: "text", rows: 3, maxlength: MAX_TEXT,
    placeholder: action === "reject" ? "拒绝原因（必填，用户可见，可引用抽奖与发货记录）" : "回复内容（必填，用户可见）" });
  const images = h("input", { type: "file", id: "complaint-images", accept: "image/png,image/jpeg,image/bmp", multiple: true });
  const amount = h("input", { id: "complaint-amount", inputmode: "decimal", autocomplete: "off",
    value: c.apply_refund_amount ? fenToYuan(Math.min(c.apply_refund_amount, c.order?.refundable_amount ?? 0)) : "" });
  const reason = h("input", { id: "complaint-reason", autocomplete: "off", value: "消费者投诉退款", maxlength: 26 });
  const titles = { reply: "回复用户", refund: "同意退款", reject: "拒绝退款", complete: "处理完成" };
  const body = {
    reply: [h("label", { for: "complaint-text" }, `回复内容（最多 ${MAX_TEXT} 字）`), text,
      h("label", { for: "complaint-images" }, `图片（最多 ${MAX_IMAGES} 张，每张不超过 2 MB）`), images],
    refund: [h("p", {}, `订单可退 ${yuan(c.order?.refundable_amount ?? 0)}；退款走退款审批规则（超出单笔限额需他人审批，审批通过后再通知微信）。`),
      h("label", { for: "complaint-amount" }, "退款金额（元）"), amount,
      h("label", { for: "complaint-reason" }, "退款原因（用户可见）"), reason],
    reject: [h("label", { for: "complaint-text" }, `拒绝原因（最多 ${MAX_TEXT} 字）`), text,
      h("label", { for: "complaint-images" }, `举证图片（最多 ${MAX_IMAGES} 张）`), images],
    complete: [h("p", {}, "确认已处理完成？微信会请用户评价本次处理。")],
  }[action];
  const form = h("form", { method: "dialog", class: "refund-form", id: `complaint-${action}-form` },
    h("h2", { id: "complaint-dialog-title" }, `${titles[action]} · `, h("span", { class: "mono" }, c.complaint_id)),
    body, h("div", { class: "actions" }, cancel, confirm), error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(confirm, async () => {
      error.show("");
      let payload = {};
      if (action === "reply" || action === "reject") {
        const words = text.value.trim();
        if (!words) return error.show(action === "reply" ? "请填写回复内容" : "请填写拒绝原因");
        const read = await readImages(images);
        if (read.error) return error.show(read.error);
        payload = action === "reply" ? { content: words, images: read.images } : { reason: words, images: read.images };
      } else if (action === "refund") {
        const parsed = parseYuan(amount.value);
        if (parsed.error) return error.show(parsed.error);
        payload = { amount: parsed.fen, reason: reason.value.trim() };
      }
      try {
        const fresh = await call("POST", `/api/admin/complaints/${seg(c.complaint_id)}/${action}`, { body: payload });
        dialog.close();
        flash(`${titles[action]}：已完成，微信状态 ${fresh.state_label}`);
        rerender(fresh);
      } catch (err) {
        error.show(errorText(err));
      }
    });
  });
  mount(dialog, form);
  dialog.showModal();
  (action === "refund" ? amount : text).focus?.();
}

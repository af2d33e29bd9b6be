// The admin API: bearer token from sessionStorage, JSON in and out, errors in Chinese.
import { fenToYuan } from "./money.js";

const TOKEN_KEY = "refund-console-token";
const BASE = document.querySelector('meta[name="api-base"]')?.content || "";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || null;
  }
}

const FIELD_NAMES = {
  amount: "金额", reason: "原因", note: "备注", order_no: "订单号", status: "状态", source_type: "来源",
  user_id: "用户ID", cursor: "分页", limit: "每页数量",
  type: "退款去向", bank_type: "银行类型", bank_account: "银行卡号", real_name: "户名",
  channel: "付款渠道", reference: "付款凭证号", paid_at: "付款时间",
};

const hasChinese = (text) => /[\u4e00-\u9fff]/.test(text || "");
const apiText = (err, fallback) => (hasChinese(err.message) ? err.message : fallback);

const MESSAGES = {
  UNAUTHENTICATED: "登录已失效或令牌无效，请重新登录",
  FORBIDDEN: "该令牌没有管理员权限",
  // the operator is signed in but their role (or four-eyes, or today's allowance) does not allow it
  PERMISSION_DENIED: (err) => apiText(err, "你的角色没有执行该操作的权限"),
  FOUR_EYES_REQUIRED: (err) => apiText(err, "需审批的退款不能由发起人本人审批，请由其他有权限的人员审批"),
  DAILY_LIMIT_EXCEEDED: (err) => apiText(err, "超过你今日的退款额度，请由其他有权限的人员发起或次日再试"),
  VALIDATION_ERROR: (err) => {
    const field = FIELD_NAMES[err.details?.field];
    return field ? `输入有误：请检查“${field}”` : "输入有误，请检查后重试";
  },
  ORDER_NOT_FOUND: "订单不存在",
  REFUND_NOT_FOUND: "退款单不存在",
  TASK_NOT_FOUND: "任务不存在",
  NOT_FOUND: "请求的内容不存在",
  AMOUNT_EXCEEDS_REFUNDABLE: (err) => (Number.isInteger(err.details?.max_refundable)
    ? `退款金额超过可退余额（当前最多可退 ¥${fenToYuan(err.details.max_refundable)}）`
    : apiText(err, "退款金额超过可退余额")),
  AMOUNT_EXCEEDS_REQUESTED: (err) => (Number.isInteger(err.details?.requested_amount)
    ? `批准金额不能超过申请金额 ¥${fenToYuan(err.details.requested_amount)}`
    : "批准金额不能超过申请金额"),
  ORDER_NOT_REFUNDABLE: (err) => apiText(err, "该订单当前不可退款"),
  INVALID_REFUND_STATE: (err) => apiText(err, "退款单状态已变化，无法执行此操作，请刷新"),
  REFUND_APPLICATION_PENDING: "该订单已有待审核的退款申请",
  REFUND_LIMIT_REACHED: "该订单的退款次数已达上限",
  REFUND_WINDOW_EXPIRED: "已超过支付后365天的退款期限",
  IDEMPOTENCY_KEY_REUSED: "重复提交的内容与上次不同，请关闭窗口刷新后重试",
  TASK_ALREADY_DONE: "该任务已处理",
  WECHAT_REJECTED: (err) => apiText(err, "微信拒绝了本次操作，请核对信息后重试"),
  UPSTREAM_UNAVAILABLE: "微信支付暂时不可用，请稍后重试",
  INTERNAL_ERROR: "服务暂时不可用，请稍后重试",
  NETWORK: "网络连接失败，请检查网络后重试",
  // answers of the API layer itself (the server or the gateway, before any handler)
  METHOD_NOT_ALLOWED: "服务器不支持该操作（请求方法不正确），请刷新页面后重试",
  PAYLOAD_TOO_LARGE: "提交的内容过大，请精简后重试",
  UNSUPPORTED_MEDIA_TYPE: "提交的数据格式不受支持，请刷新页面后重试",
  HEADERS_TOO_LARGE: "请求头过大（如令牌过长），请重新登录后重试",
  URI_TOO_LONG: "请求地址过长，请减少筛选条件后重试",
  TOO_MANY_REQUESTS: "请求过于频繁，请稍后重试",
  REQUEST_REJECTED: "请求被拒绝，请稍后重试",
};

// An answer without a code of ours (e.g. an HTML error page of a proxy): worded by its status.
const STATUS_CODES = {
  400: "VALIDATION_ERROR", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
  413: "PAYLOAD_TOO_LARGE", 414: "URI_TOO_LONG", 415: "UNSUPPORTED_MEDIA_TYPE", 429: "TOO_MANY_REQUESTS",
  431: "HEADERS_TOO_LARGE",
};

/** A Chinese sentence for any error thrown by ``call``. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return "操作失败，请刷新后重试";
  const known = MESSAGES[err.code];
  if (typeof known === "function") return known(err);
  if (known) return known;
  if (hasChinese(err.message)) return err.message;
  return err.status >= 500 ? MESSAGES.INTERNAL_ERROR : `操作失败（${err.code || err.status}）`;
}

/** One path segment: percent-encoded, but ':' and '@' stay as they are (legal in a path, and
 * task ids contain ':'; chalice local does not decode escaped path parameters). */
export function seg(value) {
  return encodeURIComponent(value).replace(/%3A/gi, ":").replace(/%40/gi, "@");
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== null && v !== undefined && v !== "") params.set(k, v);
  }
  const qs = params.toString();
  return `${BASE}${path}${qs ? `?${qs}` : ""}`;
}

async function send(method, path, { query, body, headers, authToken } = {}) {
  const h = { Accept: "application/json", ...(headers || {}) };
  const bearer = authToken ?? token.get();
  if (bearer) h.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(url(path, query), {
      method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "NETWORK", "network error");
  }
  if (resp.ok) return resp;
  let payload = {};
  try {
    payload = await resp.json();
  } catch {
    payload = {};
  }
  if (!payload || typeof payload !== "object") payload = {};
  const code = typeof payload.code === "string" && payload.code
    ? payload.code : STATUS_CODES[resp.status] || `HTTP_${resp.status}`;
  const err = new ApiError(resp.status, code, typeof payload.message === "string" ? payload.message : "",
    payload.details);
  // The stored token stopped working (expired, revoked): back to sign-in. A token being tried
  // at sign-in (``authToken``) reports its error where it was typed instead.
  if (resp.status === 401 && authToken === undefined) window.dispatchEvent(new CustomEvent("console:unauthenticated"));
  throw err;
}

/** JSON request; resolves to the parsed body, rejects with ApiError. */
export async function call(method, path, options) {
  const resp = await send(method, path, options);
  return resp.status === 204 ? null : resp.json();
}

/**
 * A CSV download that needs the Authorization header: fetch, then save through a Blob link.
 * The server sends at most a few thousand rows per response and names the next part in
 * X-Next-Cursor; the parts are joined into one file (one BOM, one header row).
 */
export async function download(path, query, fallbackName) {
  const parts = [];
  let cursor;
  let first;
  do {
    const resp = await send("GET", path, { query: { ...query, cursor }, headers: { Accept: "text/csv" } });
    const text = (await resp.text()).replace(/^\uFEFF/, "");
    parts.push(first ? text.slice(text.indexOf("\n") + 1) : text);
    first = first || resp;
    cursor = resp.headers.get("X-Next-Cursor") || undefined;
  } while (cursor);
  const blob = new Blob(["\uFEFF", ...parts], { type: first.headers.get("Content-Type") || "text/csv" });
  const match = /filename="?([^";]+)"?/.exec(first.headers.get("Content-Disposition") || "");
  const name = match ? match[1] : fallbackName;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return name;
}

/** A fresh Idempotency-Key (works without a secure context, unlike crypto.randomUUID). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

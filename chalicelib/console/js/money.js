// Money is integer fen. Yuan exists only as text typed or read by people.
// No floating point anywhere: "19.9" -> 1990 by string and integer arithmetic.

const YUAN_RE = /^(\d{1,12})(?:\.(\d{1,2}))?$/;

/** Parse yuan text into fen. Returns {fen} or {error} with a Chinese message. */
export function parseYuan(text) {
  const raw = String(text ?? "").trim();
  if (!raw) return { error: "请输入金额" };
  if (/^\d+\.\d{3,}$/.test(raw)) return { error: "金额最多两位小数" };
  const m = YUAN_RE.exec(raw);
  if (!m) return { error: "金额格式不正确，例如 19.90" };
  const whole = m[1];
  const part = (m[2] || "").padEnd(2, "0");
  const fen = parseInt(whole, 10) * 100 + parseInt(part, 10);
  if (fen <= 0) return { error: "金额必须大于 0" };
  return { fen };
}

/** 1990 -> "19.90" (exact). */
export function fenToYuan(fen) {
  if (!Number.isInteger(fen)) return "—";
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** "¥19.90" for display. */
export function yuan(fen) {
  return `¥${fenToYuan(fen)}`;
}

// The domain's labels and status groups, served with the page (entrypoints/console.py puts
// chalicelib.domain.enums.catalogue() and the refund status groups into #catalogue): the
// console keeps no copy of its own.
const data = JSON.parse(document.getElementById("catalogue")?.textContent || "{}");

/** {code: label} of the enum ``name`` (e.g. "RefundStatus"). */
export function labels(name) {
  return data.labels?.[name] || {};
}

/** The label of ``code`` in enum ``name``; the code itself when unknown. */
export function label(name, code) {
  return labels(name)[code] ?? code;
}

/** [[code, label], ...] of enum ``name``, in the domain's order: the choices of a select. */
export function choices(name) {
  return Object.entries(labels(name));
}

/** A set of refund statuses named in chalicelib/domain/refunds.py (RESERVED, AWAITING_WECHAT). */
export function group(name) {
  return new Set(data.groups?.[name] || []);
}

/** A task detail field's Chinese name and how its value is shown ({label, kind}), or null. */
export function detailField(key) {
  return data.details?.fields?.[key] || null;
}

/** WeChat's word in ``field`` (status, trade_state, event_type) by its Chinese name, with the code. */
export function wechatWord(field, code) {
  const name = data.details?.wechat?.[field]?.[code];
  return name ? `${name}（${code}）` : code;
}

/** The system's own actors (wechat, poller, reconciliation) by their Chinese names. */
export function actorName(actor) {
  return data.details?.actors?.[actor] || actor;
}

// Minors' claims (未成年人消费): their own review queue. A claim's first approval is its first
// review; a second, different person's approval refunds the whole order (the server's
// ``actions`` say who may do what).
import { call, errorText } from "./api.js";
import { dash, fmtTime, h, mount, pagedList } from "./dom.js";
import { reviewCard } from "./reviews.js";

const PAGE_SIZE = 50;

export async function showMinorClaims(ctx) {
  const list = h("div", { class: "list-body" }, h("p", { class: "muted" }, "加载中…"));
  mount(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "未成年人消费审核")),
    h("p", { class: "muted" }, "监护人提出的未成年人消费退款，整单退款，需两人审核：初审后由另一人复核通过。"), list);
  const load = pagedList(ctx, list, {
    fetchPage: (cursor) => call("GET", "/api/admin/minor-claims", { query: { limit: PAGE_SIZE, cursor } }),
    render: (items) => h("ol", { class: "review-list", id: "minor-claims" }, items.map((r) => reviewCard(r, claimFields(r)))),
    empty: () => "没有待审核的未成年人消费申请",
    errorText,
  });
  await load();
}

function claimFields(r) {
  const g = r.claim.guardian || {};
  const first = r.claim.first_review;
  return h("dl", { class: "fields claim" },
    h("dt", {}, "监护人"), h("dd", {}, dash(g.relationship_label)),
    h("dt", {}, "陈述"), h("dd", { dataset: { field: "statement" } }, dash(g.statement)),
    h("dt", {}, "证明材料"), h("dd", {}, (g.evidence || []).map((e) => h("div", { class: "mono" }, e))),
    h("dt", {}, "初审"), h("dd", { dataset: { field: "first_review" } },
      first ? `${first.by} · ${fmtTime(first.at)}` : "待初审"));
}

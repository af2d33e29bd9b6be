// Counts on the nav (GET /api/admin/counts): refunds waiting for review (待审核) and open tasks
// (待处理), asked again on every page.
import { call } from "./api.js";
import { label } from "./catalogue.js";
import { h } from "./dom.js";

// nav link -> [the count's key, what it counts: the domain's label of that status]
const BADGES = {
  reviews: ["pending_review", label("RefundStatus", "pending_review")],
  tasks: ["open_tasks", label("TaskStatus", "open")],
};

export async function showCounts(alive) {
  let counts;
  try {
    counts = await call("GET", "/api/admin/counts");
  } catch {
    return; // the counts are a hint: the pages themselves say what went wrong
  }
  if (!alive()) return;
  for (const [nav, [key, what]] of Object.entries(BADGES)) {
    const link = document.querySelector(`#nav a[data-nav=${nav}]`);
    if (!link) continue;
    link.querySelector(".count")?.remove();
    const n = counts[key];
    if (Number.isInteger(n) && n > 0) {
      link.append(h("span", { class: "count", id: `count-${nav}`, "aria-label": `${what} ${n} 项` }, String(n)));
    }
  }
}

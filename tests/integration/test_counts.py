"""GET /api/admin/counts: refunds waiting for review and open tasks, over every shard."""
from __future__ import annotations

from chalicelib.adapters import repository as repo
from chalicelib.domain import clock
from chalicelib.domain.enums import TaskType
from chalicelib.domain.tasks import Task


def test_counts_follow_the_backlog(env):
    before = env.api.get("/api/admin/counts", env.admin).json()
    assert set(before) == {"pending_review", "open_tasks"}
    for n in (3, 4):
        r = env.api.post(f"/api/app/orders/{env.order(n).order_no}/refund/apply", env.user(env.order(n).user_id),
                         {"amount": 100, "reason": "不想要了"})
        assert r.status_code == 201, r.text
    tasks = [Task(TaskType.RETURN_TO_WAREHOUSE, f"CNT{i}", "入库", order_no=env.order(1).order_no) for i in range(11)]
    repo.write([repo.open_task(t, now=clock.iso(clock.now()), by="test") for t in tasks])
    after = env.api.get("/api/admin/counts", env.admin).json()
    assert after["pending_review"] == before["pending_review"] + 2
    assert after["open_tasks"] == before["open_tasks"] + 11
    done = env.api.post(f"/api/admin/manual-tasks/{tasks[0].task_id}/done", env.admin, {})
    assert done.status_code == 200
    assert env.api.get("/api/admin/counts", env.admin).json()["open_tasks"] == after["open_tasks"] - 1
    assert env.api.get("/api/admin/counts?x=1", env.admin).status_code == 400

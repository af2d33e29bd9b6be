"""POST /api/admin/manual-tasks/{id}/reopen: a done task opens again, with the permission its
kind names for closing it; its history keeps who closed and who reopened it."""
from __future__ import annotations

from chalicelib.adapters import repository as repo
from chalicelib.domain import clock
from chalicelib.domain.enums import TaskType
from chalicelib.domain.tasks import Task


def _open(env, task_type: TaskType, subject: str) -> str:
    task = Task(task_type, subject, "核对后处理", order_no=env.order(1).order_no)
    repo.write([repo.open_task(task, now=clock.iso(clock.now()), by="system")])
    return task.task_id


def _post(env, token, task_id: str, what: str, note: str | None = None):
    return env.api.post(f"/api/admin/manual-tasks/{task_id}/{what}", token, {"note": note} if note else {})


def test_a_done_task_is_reopened_and_closed_again(env):
    task_id = _open(env, TaskType.RETURN_TO_WAREHOUSE, "R1")
    support = env.staff("support", "s-1")
    assert _post(env, support, task_id, "done", "已入库").status_code == 200
    r = _post(env, support, task_id, "reopen", "货品未到仓")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["done_by"] is None
    stored = repo.get_task(task_id)
    assert [(e.what, e.by, e.note) for e in stored.history][-2:] == [
        ("done", "support:s-1", "已入库"), ("reopened", "support:s-1", "货品未到仓")]
    assert task_id in {t["task_id"] for t in env.api.get("/api/admin/manual-tasks?status=open&limit=100",
                                                          env.admin).json()["items"]}
    again = _post(env, support, task_id, "reopen")  # a retry: nothing changes
    assert again.status_code == 200 and len(repo.get_task(task_id).history) == len(stored.history)
    assert _post(env, support, task_id, "done").status_code == 200


def test_reopening_takes_the_kinds_closing_permission(env):
    task_id = _open(env, TaskType.PAYMENT_MISMATCH, "P1")
    finance = env.staff("finance", "f-1")
    assert _post(env, finance, task_id, "done", "已核对").status_code == 200
    r = _post(env, env.staff("support", "s-1"), task_id, "reopen")
    assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED"
    assert repo.get_task(task_id).status == "done"
    assert _post(env, finance, task_id, "reopen").json()["status"] == "open"


def test_unknown_task_and_bad_note(env):
    r = _post(env, env.admin, "return_to_warehouse.NOPE", "reopen")
    assert r.status_code == 404 and r.json()["code"] == "TASK_NOT_FOUND"
    task_id = _open(env, TaskType.RETURN_TO_WAREHOUSE, "R2")
    r = env.api.post(f"/api/admin/manual-tasks/{task_id}/reopen", env.admin, {"note": "a\x07b"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "note"

"""The task model: one id per cause and subject, who may close each kind, which are bound to money,
and the one write that opens (or reopens) a task."""
from types import SimpleNamespace

from chalicelib.adapters import repository as repo
from chalicelib.adapters.models import ManualTask, Refund
from chalicelib.domain import staff as staff_rules
from chalicelib.domain import tasks as task_rules
from chalicelib.domain.enums import Permission, StaffRole, TaskType


def test_every_cause_has_a_kind_and_its_closer_is_a_real_permission():
    assert set(task_rules.KINDS) == set(TaskType)
    for kind in task_rules.KINDS.values():
        assert any(staff_rules.has(role, kind.close_permission) for role in StaffRole)


def test_money_tasks_need_finance_to_close():
    for task_type in task_rules.BOUND_TO_MONEY:
        assert task_rules.KINDS[task_type].close_permission == Permission.REFUNDS_RESOLVE
        assert not staff_rules.has(StaffRole.SUPPORT, task_rules.KINDS[task_type].close_permission)
    assert {TaskType.REFUND_ABNORMAL, TaskType.ACCOUNT_ABNORMAL, TaskType.OFFLINE_PAYOUT} <= task_rules.BOUND_TO_MONEY


def test_one_cause_and_subject_is_one_id_whoever_sees_it():
    refund = SimpleNamespace(refund_no="R1", order_no="O1", user_id="u1")
    a = task_rules.for_refund(refund, TaskType.REFUND_ABNORMAL, "from a notification")
    b = task_rules.for_refund(refund, TaskType.REFUND_ABNORMAL, "from the poller")
    assert a.task_id == b.task_id == "refund_abnormal.R1"
    prizes = {task_rules.for_refund(refund, TaskType.INVENTORY_NOT_REVOCABLE, "x", part=p).task_id for p in "AB"}
    assert prizes == {"inventory_not_revocable.R1.A", "inventory_not_revocable.R1.B"}
    assert task_rules.Task(TaskType.PAID_AFTER_CANCEL, "O1", "x", order_no="O1").task_id == "paid_after_cancel.O1"


def test_opening_is_an_unconditional_upsert_that_reopens_and_keeps_history():
    task = task_rules.Task(TaskType.PAYMENT_MISMATCH, "O1", "核对", order_no="O1", part="T9")
    item = repo.open_task(task, now="t1", by="wechat")
    assert item.kind == "update" and item.condition is None  # never cancels the write it is part of
    text = " ".join(str(a) for a in item.actions)
    assert "if_not_exists (created_at" in text and "list_append (if_not_exists (history" in text
    assert "status = {'S': 'open'}" in text
    removed = {a.values[0].path[0] for a in item.actions if type(a).__name__ == "RemoveAction"}
    assert removed == {"done_by", "done_at", "note"}  # a reopened task is open again; its history says who closed it
    assert "status_key = {'S': 'open#" in text


def test_a_refund_binds_and_settles_its_money_tasks_on_the_tasks_it_read():
    refund = Refund("R1", order_no="O", user_id="u", origin="admin", amount=1, requested_amount=1,
                    status="processing", created_by="a", order_total=1, created_at="t", updated_at="t")
    bind = repo.refund_change(refund, expected_status="processing", fields={}, event=None, bind_tasks=["t1"])
    assert "attribute_not_exists (open_tasks)" in str(bind.condition)
    refund.open_tasks = {"t1", "t2"}
    settle = repo.refund_change(refund, expected_status="processing", fields={"status": "success"}, event=None,
                                settle_tasks=True)
    assert "size (open_tasks) = {'N': '2'}" in str(settle.condition)
    closing = repo.settle_task("t1", by="wechat", note="退款成功", now="t")
    assert "attribute_exists (task_id)" in str(closing.condition)
    assert "status = {'S': 'done'}" in " ".join(str(a) for a in closing.actions)


def test_a_new_task_item_gets_its_status_key():
    assert ManualTask("x", type="outcome_conflict", order_no="o", action="a", created_at="t").status_key.startswith("open#")

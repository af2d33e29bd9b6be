"""A DynamoDB TransactionConflict is retried; a failed condition is not."""
import pytest

from chalicelib.adapters import repository as repo


def test_transaction_conflict_is_retried(monkeypatch):
    calls = []

    def once(items):
        calls.append(1)
        if len(calls) < 3:
            raise repo.WriteConflict({"order": "TransactionConflict"})

    monkeypatch.setattr(repo, "_transact_once", once)
    monkeypatch.setattr(repo, "_backoff", lambda attempt: None)
    repo.transact([])
    assert len(calls) == 3


def test_condition_failure_is_not_retried(monkeypatch):
    calls = []

    def once(items):
        calls.append(1)
        raise repo.WriteConflict({"order": "ConditionalCheckFailed", "refund": "TransactionConflict"})

    monkeypatch.setattr(repo, "_transact_once", once)
    with pytest.raises(repo.WriteConflict) as exc:
        repo.transact([])
    assert exc.value.failed("order") and len(calls) == 1

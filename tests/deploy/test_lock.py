"""The lock files agree with the requirements they were compiled from (offline checks,
deploy/lock.py): a requirement edited without `make lock` fails here."""
from __future__ import annotations

import shutil

import pytest

from deploy import lock

FILES = ["requirements.txt", "requirements-dev.txt", "requirements.lock", "requirements-dev.lock"]


def test_committed_locks_match_their_requirements():
    assert [p for entry in lock.LOCKS for p in lock.problems(entry)] == []
    assert lock.disagreements() == []


def test_every_locked_package_is_pinned_with_hashes():
    for entry in lock.LOCKS:
        packages = lock.parse_lock(entry.path)
        assert packages and all(e.version and e.hashes for e in packages.values()), entry.path
    runtime = lock.parse_lock("requirements.lock")
    assert {"boto3", "botocore", "pynamodb", "cryptography", "cffi", "urllib3"} <= set(runtime)


@pytest.fixture
def copy(tmp_path, monkeypatch):
    for name in FILES:
        shutil.copy2(lock.ROOT / name, tmp_path / name)
    monkeypatch.setattr(lock, "ROOT", tmp_path)
    return tmp_path


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_version_bump_without_relocking_fails(copy):
    assert lock.problems(lock.RUNTIME) == []
    _edit(copy / "requirements.txt", "pynamodb==6.1.0", "pynamodb==6.0.2")
    found = lock.problems(lock.RUNTIME)
    assert any("not compiled from the current requirements.txt" in p for p in found)
    assert any("pynamodb: requirements.txt pins 6.0.2, requirements.lock has 6.1.0" in p for p in found)
    # the dev lock includes requirements.txt, so it is stale too
    assert any("requirements.txt" in p for p in lock.problems(lock.DEV))


def test_a_new_requirement_missing_from_the_lock_fails(copy):
    with (copy / "requirements-dev.txt").open("a", encoding="utf-8") as f:
        f.write("ruff==0.15.0\n")
    found = lock.problems(lock.DEV)
    assert "ruff==0.15.0 (requirements-dev.txt) is not in requirements-dev.lock" in found


def test_a_removed_requirement_still_locked_fails(copy):
    _edit(copy / "requirements.txt", "wechatpayv3==2.0.4\n", "")
    assert any("wechatpayv3 is locked as a direct requirement" in p for p in lock.problems(lock.RUNTIME))


def test_a_hand_edited_lock_fails(copy):
    version = lock.parse_lock("requirements-dev.lock")["urllib3"].version
    _edit(copy / "requirements-dev.lock", f"\nurllib3=={version}", "\nurllib3==2.0.0")
    assert lock.disagreements() == [f"urllib3: requirements.lock has {version}, requirements-dev.lock has 2.0.0"]

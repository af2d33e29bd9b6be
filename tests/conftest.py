"""Shared fixtures: one embedded stack per test session (moto server, WeChat Pay
simulator, the Chalice app over HTTP, the local driver) and a fresh set of tables,
queue and demo data for every test that asks for ``env``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("STAGE", "local")



@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from devstack.stack import Stack, StackConfig

    cfg = StackConfig(workdir=Path(tmp_path_factory.mktemp("devstack")), api_port=0, seed=False, driver=False, access_log=False,
                      outcome_delay=0.3, poll_after_seconds=0, restore_sweep_seconds=0,
                      notify_retry_schedule=(0.2, 0.4), visibility_timeout=1, max_receive_count=3,
                      refund_interval_seconds=0)
    s = Stack(cfg).start()
    yield s
    s.stop()


@pytest.fixture
def env(stack):
    """A clean world for one test: AWS state reset, tables, queues and demo data anew, simulator reset."""
    from tests.support import World

    world = World(stack)
    world.setup()
    yield world
    world.teardown()

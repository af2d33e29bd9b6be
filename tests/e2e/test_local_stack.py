"""The embedded stack started exactly as `make run` starts it, used over HTTP."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from devstack.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_stack_serves_refunds_end_to_end(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "RESTORE_"))}
    proc = subprocess.Popen([sys.executable, "-m", "devstack", "run", "--port", str(port), "--workdir", str(tmp_path),
                             "--aws-port", str(free_port()), "--sim-port", str(free_port()),
                             "--outcome-delay", "0.5", "--poll-interval", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        token = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and token is None:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "stack exited early"
            if "Admin token" in line:
                token = line.split()[-1]
        assert token, "no admin token printed"
        h = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{base}/api/health", timeout=10).json()["status"] == "ok"
        orders = requests.get(f"{base}/api/admin/orders?status=2&limit=50", headers=h, timeout=10).json()["items"]
        assert orders and all(o["status_label"] == "已支付" for o in orders)
        target = next(o for o in orders if o["source_type"] == 1 and o["shipping_status"] == 1)
        r = requests.post(f"{base}/api/admin/pay/refunds", headers=h, timeout=10,
                          json={"order_no": target["order_no"], "amount": 100, "reason": "e2e"})
        assert r.status_code == 201, r.text
        no = r.json()["refund_no"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            d = requests.get(f"{base}/api/admin/pay/refunds/{no}", headers=h, timeout=10).json()
            if d["status"] == "success" and d["restoration_status"] == "done":
                break
            time.sleep(0.3)
        assert d["status_label"] == "退款成功" and d["restoration_status"] == "done", d
        detail = requests.get(f"{base}/api/admin/orders/{target['order_no']}", headers=h, timeout=10).json()
        assert detail["order"]["refunded_amount"] == 100 and detail["refunds"][0]["refund_no"] == no
        assert requests.get(f"{base}/api/admin/orders", timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0

"""What `make run` has to take on one machine: bursts of clients, restarts right after a busy
session, and the in-memory AWS endpoint's transactions. Loopback only, bounded in count and time."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.__main__ import _port_free
from devstack.burst import answered, burst as _burst

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 100


def test_a_hundred_concurrent_clients_get_answers_from_the_api(stack):
    assert stack.server.server.request_queue_size >= CLIENTS
    assert _burst(stack.api_url, "/api/health") == {"200": CLIENTS}


def test_a_hundred_concurrent_clients_get_answers_from_the_simulator(stack):
    # any answer of the simulator will do (an unsigned GET is refused): what counts is no reset
    outcomes = _burst(stack.sim.base_url, "/v3/refund/domestic/refunds/RF-BURST")
    assert answered(outcomes) == CLIENTS, outcomes


def _port_in_time_wait() -> int:
    """A loopback port with a connection of a server that is gone still in TIME_WAIT on it."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    conn.close()  # the server side closes first: its end of the connection goes to TIME_WAIT
    assert client.recv(1) == b""
    client.close()
    listener.close()
    return port


def test_a_port_whose_connections_are_in_time_wait_is_free():
    port = _port_in_time_wait()
    # what the check did before: a plain bind trips over the TIME_WAIT connection
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    assert _port_free(port)


def test_a_port_something_listens_on_is_refused():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        assert not _port_free(port)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "RESTORE_"))}
        done = subprocess.run([sys.executable, "-m", "devstack", "run", "--port", str(port)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"port in use: API {port}" in done.stderr


def test_the_api_server_binds_at_once_over_time_wait(stack):
    """The restart itself: the local API's server class binds a port in TIME_WAIT."""
    from devstack.stack import _api_server_class

    port = _port_in_time_wait()
    server = _api_server_class()(("127.0.0.1", port), lambda *a: None)
    try:
        assert server.server_address[1] == port
    finally:
        server.server_close()


def test_a_cancelled_transaction_leaves_every_item_as_it_was(stack):
    """The local endpoint rolls a cancelled TransactWriteItems back item by item (not by copying
    whole tables): a put, an update and a delete that passed are undone when a later condition fails."""
    import boto3

    ddb = boto3.client("dynamodb", region_name="ap-east-1", endpoint_url=stack.env["AWS_ENDPOINT_URL"])
    table = f"txn-probe-{os.getpid()}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    try:
        ddb.put_item(TableName=table, Item={"k": {"S": "kept"}, "n": {"N": "1"}})
        ddb.put_item(TableName=table, Item={"k": {"S": "gone"}, "n": {"N": "1"}})
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": table, "Item": {"k": {"S": "new"}}}},
                {"Update": {"TableName": table, "Key": {"k": {"S": "kept"}}, "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Delete": {"TableName": table, "Key": {"k": {"S": "gone"}}}},
                {"ConditionCheck": {"TableName": table, "Key": {"k": {"S": "absent"}},
                                    "ConditionExpression": "attribute_exists(k)"}},
            ])
        items = {i["k"]["S"]: i.get("n", {}).get("N") for i in ddb.scan(TableName=table)["Items"]}
        assert items == {"kept": "1", "gone": "1"}
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"k": {"S": "new"}}}},
            {"Update": {"TableName": table, "Key": {"k": {"S": "kept"}}, "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ])
        items = {i["k"]["S"]: i.get("n", {}).get("N") for i in ddb.scan(TableName=table)["Items"]}
        assert items == {"kept": "2", "gone": "1", "new": None}
    finally:
        ddb.delete_table(TableName=table)

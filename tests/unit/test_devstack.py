"""The embedded stack's own pieces. The local AWS endpoint's direct item reads
(devstack/aws.py) answer exactly what moto's own serialiser answers: every read operation,
every attribute type, projections top-level and nested, index projections; botocore parses
both answers and they must be equal. The local driver fires the daily reconciliation when
EventBridge would."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from devstack import aws

TABLE = "local-aws-fidelity"


def _item(n: int) -> dict:
    return {
        "pk": {"S": f"k{n:03d}"}, "day": {"S": "2026-11-25"}, "amount": {"N": str(100 * n + 1)},
        "price": {"N": "12.50"}, "name": {"S": "盲盒 №" + str(n) + " \u2028\U0001f381 \"q\" \\ </"},
        "blob": {"B": bytes([n % 256, 0, 255, 10])}, "flag": {"BOOL": n % 2 == 0}, "nothing": {"NULL": True},
        "tags": {"SS": ["a", "b", f"t{n}"]}, "nums": {"NS": ["1", "2.5", str(n)]}, "bins": {"BS": [b"\x00\x01", b"\xff"]},
        "lst": {"L": [{"S": "x"}, {"N": "3"}, {"M": {"deep": {"BOOL": False}}}, {"L": []}]},
        "mp": {"M": {"a": {"S": "α"}, "b": {"M": {"c": {"N": "-7"}}}, "empty": {"M": {}}}},
    }


def _reads(client) -> dict:
    """Every item read the service and the console make, as parsed by botocore."""
    out = {
        "get": client.get_item(TableName=TABLE, Key={"pk": {"S": "k003"}}),
        "get_missing": client.get_item(TableName=TABLE, Key={"pk": {"S": "nope"}}),
        "get_projected": client.get_item(TableName=TABLE, Key={"pk": {"S": "k004"}},
                                         ProjectionExpression="#n, amount, #b, absent",
                                         ExpressionAttributeNames={"#n": "name", "#b": "blob"}),
        "get_nested": client.get_item(TableName=TABLE, Key={"pk": {"S": "k004"}},
                                      ProjectionExpression="mp.b.c, lst[2], amount"),
        "get_nested_map": client.get_item(TableName=TABLE, Key={"pk": {"S": "k005"}},
                                          ProjectionExpression="amount, mp.b"),
        "batch": client.batch_get_item(RequestItems={TABLE: {
            "Keys": [{"pk": {"S": f"k{n:03d}"}} for n in (1, 2, 99, 5)],
            "ProjectionExpression": "pk, amount, tags, bins"}}),
        "batch_whole": client.batch_get_item(RequestItems={TABLE: {"Keys": [{"pk": {"S": "k006"}}]}}),
        "query_index": client.query(TableName=TABLE, IndexName="by_day", KeyConditionExpression="#d = :d",
                                    ExpressionAttributeNames={"#d": "day"},
                                    ExpressionAttributeValues={":d": {"S": "2026-11-25"}}, Limit=4),
        "query_index_projected": client.query(TableName=TABLE, IndexName="by_day",
                                              KeyConditionExpression="#d = :d", ProjectionExpression="pk, amount",
                                              ExpressionAttributeNames={"#d": "day"},
                                              ExpressionAttributeValues={":d": {"S": "2026-11-25"}}),
        "query_keys_only": client.query(TableName=TABLE, IndexName="keys_by_day", KeyConditionExpression="#d = :d",
                                        ExpressionAttributeNames={"#d": "day"},
                                        ExpressionAttributeValues={":d": {"S": "2026-11-25"}}),
        "query_table": client.query(TableName=TABLE, KeyConditionExpression="pk = :k",
                                    ExpressionAttributeValues={":k": {"S": "k007"}}),
        "scan_filtered": client.scan(TableName=TABLE, FilterExpression="amount > :a",
                                     ExpressionAttributeValues={":a": {"N": "500"}}, Limit=6),
        "transact_get": client.transact_get_items(TransactItems=[
            {"Get": {"TableName": TABLE, "Key": {"pk": {"S": "k008"}}}},
            {"Get": {"TableName": TABLE, "Key": {"pk": {"S": "k009"}}, "ProjectionExpression": "flag, nothing"}},
            {"Get": {"TableName": TABLE, "Key": {"pk": {"S": "missing"}}}}]),
    }
    first = out["query_index"]
    out["query_index_page_2"] = client.query(
        TableName=TABLE, IndexName="by_day", KeyConditionExpression="#d = :d", ExpressionAttributeNames={"#d": "day"},
        ExpressionAttributeValues={":d": {"S": "2026-11-25"}}, ExclusiveStartKey=first["LastEvaluatedKey"])
    for answer in out.values():
        answer.pop("ResponseMetadata", None)
    return out


def _sets_sorted(value):
    """DynamoDB sets have no order (moto's own projection reorders them): compare them sorted."""
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS", "BS") and isinstance(v, list) else _sets_sorted(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_sets_sorted(v) for v in value]
    return value


@pytest.fixture
def client():
    with mock_aws():
        c = boto3.client("dynamodb", region_name="ap-east-1")
        c.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "day", "AttributeType": "S"},
                                  {"AttributeName": "amount", "AttributeType": "N"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {"IndexName": "by_day", "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"},
                                                      {"AttributeName": "amount", "KeyType": "RANGE"}],
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["name", "blob", "mp"]}},
                {"IndexName": "keys_by_day", "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "KEYS_ONLY"}}])
        for n in range(1, 13):
            c.put_item(TableName=TABLE, Item=_item(n))
        yield c
    aws.install_direct_item_reads()


def test_direct_item_reads_answer_what_moto_answers(client):
    aws.install_direct_item_reads(False)
    expected = _reads(client)
    aws.install_direct_item_reads()
    got = _reads(client)
    assert got.keys() == expected.keys()
    for name in expected:
        assert _sets_sorted(got[name]) == _sets_sorted(expected[name]), name
    # the comparison covers what it claims to: projections, binaries, sets, pages, misses
    assert set(got["get_projected"]["Item"]) == {"name", "amount", "blob"}
    assert got["get_projected"]["Item"]["blob"]["B"] == bytes([4, 0, 255, 10])
    assert got["get_nested"]["Item"] == {"mp": {"M": {"b": {"M": {"c": {"N": "-7"}}}}},
                                         "lst": {"L": [{"M": {"deep": {"BOOL": False}}}]}, "amount": {"N": "401"}}
    assert got["get_nested_map"]["Item"] == {"amount": {"N": "501"}, "mp": {"M": {"b": {"M": {"c": {"N": "-7"}}}}}}
    assert "Item" not in got["get_missing"]
    assert len(got["batch"]["Responses"][TABLE]) == 3
    assert set(got["query_keys_only"]["Items"][0]) == {"pk", "day"}
    assert got["query_index"]["Count"] == 4 and got["query_index_page_2"]["Count"] == 8
    assert got["transact_get"]["Responses"][2] == {}


def test_projected_reads_do_not_alias_stored_items(client):
    """A projection shares the stored values; the item read later is unchanged by what a reader did."""
    aws.install_direct_item_reads()
    projected = client.get_item(TableName=TABLE, Key={"pk": {"S": "k010"}}, ProjectionExpression="tags, amount")
    client.update_item(TableName=TABLE, Key={"pk": {"S": "k010"}}, UpdateExpression="ADD tags :t SET amount = :a",
                       ExpressionAttributeValues={":t": {"SS": ["new"]}, ":a": {"N": "5"}})
    assert sorted(projected["Item"]["tags"]["SS"]) == ["a", "b", "t10"]
    after = client.get_item(TableName=TABLE, Key={"pk": {"S": "k010"}})["Item"]
    assert sorted(after["tags"]["SS"]) == ["a", "b", "new", "t10"] and after["amount"] == {"N": "5"}


def test_the_local_driver_fires_the_daily_reconciliation_at_its_cron_time():
    from chalice import Cron

    from devstack.driver import next_daily

    cron = Cron(30, 2, "*", "*", "?", "*")
    utc = timezone.utc
    assert next_daily(datetime(2026, 11, 26, 1, 0, tzinfo=utc), cron) == datetime(2026, 11, 26, 2, 30, tzinfo=utc)
    assert next_daily(datetime(2026, 11, 26, 2, 30, tzinfo=utc), cron) == datetime(2026, 11, 27, 2, 30, tzinfo=utc)
    beijing = timezone(timedelta(hours=8))  # 10:29 Beijing is 02:29 UTC
    assert next_daily(datetime(2026, 11, 26, 10, 29, tzinfo=beijing), cron) == datetime(2026, 11, 26, 2, 30, tzinfo=utc)
    # the app's: the first attempt at 02:30, then every 30 minutes while a bill is late
    retries = Cron("0/30", "2-14", "*", "*", "?", "*")
    assert next_daily(datetime(2026, 11, 26, 2, 30, tzinfo=utc), retries) == datetime(2026, 11, 26, 3, 0, tzinfo=utc)
    assert next_daily(datetime(2026, 11, 26, 14, 30, tzinfo=utc), retries) == datetime(2026, 11, 27, 2, 0, tzinfo=utc)


# ---------------------------------------------------------------- index queries

PAGED = "local-aws-paging"


def _paging_table(c) -> None:
    c.create_table(
        TableName=PAGED, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in
                              (("pk", "S"), ("sk", "N"), ("day", "S"), ("at", "S"), ("shard", "N"))],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_day_at", "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"},
                                                     {"AttributeName": "at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["amount", "note"]}},
            {"IndexName": "by_day", "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
            {"IndexName": "by_shard", "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"},
                                                    {"AttributeName": "at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "KEYS_ONLY"}}])


def _paging_item(rng, n: int) -> dict:
    item = {"pk": {"S": f"p{rng.randrange(40):02d}"}, "sk": {"N": str(n)}, "amount": {"N": str(rng.randrange(1, 9999))},
            "note": {"S": "x" * rng.randrange(0, 40)}, "shard": {"N": str(rng.randrange(3))}}
    if rng.random() < 0.85:  # sparse: some items are in no index that needs day
        item["day"] = {"S": rng.choice(["2026-11-24", "2026-11-25", "2026-11-26"])}
    if rng.random() < 0.8:  # repeated range values: the table's keys break the ties
        item["at"] = {"S": f"2026-11-25T{rng.randrange(24):02d}:{rng.randrange(3):02d}"}
    return item


QUERIES = [
    dict(IndexName="by_day_at", KeyConditionExpression="#d = :d"),
    dict(IndexName="by_day_at", KeyConditionExpression="#d = :d", ScanIndexForward=False),
    dict(IndexName="by_day_at", KeyConditionExpression="#d = :d AND #a BETWEEN :lo AND :hi"),
    dict(IndexName="by_day_at", KeyConditionExpression="#d = :d AND begins_with(#a, :p)", ScanIndexForward=False),
    dict(IndexName="by_day_at", KeyConditionExpression="#d = :d AND #a < :hi", FilterExpression="amount > :m"),
    dict(IndexName="by_day_at", KeyConditionExpression="#d = :d", ProjectionExpression="pk, sk, amount"),
    dict(IndexName="by_day", KeyConditionExpression="#d = :d", FilterExpression="amount < :m"),
    dict(IndexName="by_day", KeyConditionExpression="#d = :d", ScanIndexForward=False, ProjectionExpression="note"),
    dict(IndexName="by_shard", KeyConditionExpression="shard = :s"),
    dict(IndexName="by_shard", KeyConditionExpression="shard = :s AND #a >= :lo", ScanIndexForward=False),
]
NAMES = {"#d": "day", "#a": "at"}
VALUES = {":d": {"S": "2026-11-25"}, ":lo": {"S": "2026-11-25T05"}, ":hi": {"S": "2026-11-25T17:01"},
          ":p": {"S": "2026-11-25T1"}, ":m": {"N": "5000"}, ":s": {"N": "1"}}


def _walk(c, query: dict, limit: int | None) -> list[dict]:
    """Every page of ``query``, as botocore parses them."""
    text = " ".join(str(v) for v in query.values())
    request = {"TableName": PAGED, **query,
               "ExpressionAttributeNames": {k: v for k, v in NAMES.items() if k in text},
               "ExpressionAttributeValues": {k: v for k, v in VALUES.items() if k in text}}
    if not request["ExpressionAttributeNames"]:
        del request["ExpressionAttributeNames"]
    if limit:
        request["Limit"] = limit
    pages = []
    while True:
        page = c.query(**request)
        page.pop("ResponseMetadata", None)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _all_walks(c) -> list:
    return [_walk(c, q, limit) for q in QUERIES for limit in (None, 9)]


def test_index_queries_page_as_moto_pages_also_after_writes(client):
    import random

    rng = random.Random(20261126)
    _paging_table(client)
    made = [_paging_item(rng, n) for n in range(200)]
    for item in made:
        client.put_item(TableName=PAGED, Item=item)
    big = {"pk": {"S": "big"}, "day": {"S": "2026-11-25"}, "at": {"S": "2026-11-25T12:00"}, "shard": {"N": "1"}}
    for n in range(5):  # 1 MB pages: items of ~300 KB
        client.put_item(TableName=PAGED, Item={**big, "sk": {"N": str(n)}, "note": {"S": "y" * 300_000}})

    def compare() -> int:
        """Walks with the partitions as they are, again, then moto's own walks."""
        got = _all_walks(client)
        got_again = _all_walks(client)  # the sorted partitions kept from the first walk
        aws.install_direct_item_reads(False)
        expected = _all_walks(client)
        aws.install_direct_item_reads()
        for i, (ours, theirs) in enumerate(zip(got, expected)):
            assert ours == theirs, f"walk {i}: {len(ours)} pages against moto's {len(theirs)}"
        assert got_again == got
        return sum(len(w) for w in got)

    aws.install_direct_item_reads()
    pages = compare()
    assert pages > 80  # the walks cross many page boundaries, by count and by size
    # writes between walks: index keys moved, items deleted and added, one left the index
    _all_walks(client)  # partitions sorted; the writes below must not leave them in use
    for item in made[::7]:
        client.update_item(TableName=PAGED, Key={"pk": item["pk"], "sk": item["sk"]},
                           UpdateExpression="SET #a = :a", ExpressionAttributeNames={"#a": "at"},
                           ExpressionAttributeValues={":a": {"S": "2026-11-25T09:59"}})
    page = client.query(TableName=PAGED, IndexName="by_day", KeyConditionExpression="#d = :d",
                        ExpressionAttributeNames={"#d": "day"}, ExpressionAttributeValues={":d": {"S": "2026-11-25"}},
                        Limit=3)
    client.delete_item(TableName=PAGED, Key={"pk": page["Items"][0]["pk"], "sk": page["Items"][0]["sk"]})
    client.update_item(TableName=PAGED, Key={"pk": page["Items"][1]["pk"], "sk": page["Items"][1]["sk"]},
                       UpdateExpression="REMOVE #d", ExpressionAttributeNames={"#d": "day"})
    for n in range(200, 220):
        client.put_item(TableName=PAGED, Item=_paging_item(rng, n))
    compare()


def test_the_local_driver_sweeps_complaints_at_start_and_then_on_its_timer():
    """`make run` drives the complaint sweep like Lambda's schedule: once at start (which registers
    the complaint notify URL), then every interval, with a scheduled event and a context."""
    import threading

    from devstack.driver import Driver

    seen, ticked = [], threading.Condition()

    class App:
        def complaints_sweep(self, event, context):
            with ticked:
                seen.append((event["detail-type"], context.function_name, context.get_remaining_time_in_millis()))
                ticked.notify_all()

    driver = Driver(App(), None, "", "", "ap-east-1", 3600, complaint_interval=0.01)
    driver._sqs_loop = lambda: None  # no queue here
    driver.start()
    try:
        with ticked:
            assert ticked.wait_for(lambda: len(seen) >= 2, timeout=30)
    finally:
        driver.stop()
    assert seen[0][:2] == ("Scheduled Event", "complaints_sweep") and seen[0][2] > 200_000

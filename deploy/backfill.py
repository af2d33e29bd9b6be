"""Give the items of a table the index keys the code derives today (``chalicelib/adapters/keys.py``).

A release that adds an index key (a sparse day index, a shard) or changes how one is derived
(a shard count) ships with a run of this command after its deploy: items written before it
lack the key, so the index does not find them. The keys come from ``keys.item_keys``, the same
derivation the writers use, so a key added there is backfilled without a change here.

    python -m deploy.backfill orders --stage prod                 # all orders, 100 items/s
    python -m deploy.backfill payment_refunds --stage prod --rate 500
    python -m deploy.backfill manual_tasks --stage prod --restart # scan again from the start

- idempotent: an item whose keys are right is not written; a second run writes nothing;
- safe beside the live service: each write is conditional on the item being as it was read
  (its keys and ``updated_at``); an item a writer changed in between already got its keys from
  that write, and is left alone ("changed meanwhile");
- resumable: after every page the position (DynamoDB's LastEvaluatedKey) and the counts go to a
  checkpoint file (``deploy/out/backfill-<stage>-<table>.json``); a run that stops, is stopped
  (Ctrl-C, ``--max-items``) or fails goes on from there when started again; a finished one says so;
- rate-limited: at most ``--rate`` items read a second (each read item costs half a read unit
  of a consistent Scan at most 4 KB, a written one a write unit), in pages of ``--page``;
- progress: one line per page on stderr (scanned, given keys, already right, changed meanwhile,
  items a second).

The credentials need ``dynamodb:Scan`` and ``dynamodb:UpdateItem`` on the table (an operator's, not
a function's: no function of the stack may scan).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from chalicelib.adapters.keys import KEYED_TABLES

ROOT = Path(__file__).resolve().parent.parent


class Limiter:
    """At most ``per_second`` takes a second (evenly spaced)."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if per_second <= 0:
            raise ValueError("the rate must be positive")
        self.interval, self.clock, self.sleep = 1.0 / per_second, clock, sleep
        self.next_at: float | None = None

    def take(self) -> None:
        now = self.clock()
        if self.next_at is not None and self.next_at > now:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


@dataclass
class Checkpoint:
    table: str
    stage: str
    last_key: dict | None = None  # where the scan goes on (None: from the start)
    done: bool = False
    scanned: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_meanwhile: int = 0
    runs: list = field(default_factory=list)  # when each run started

    @classmethod
    def load(cls, path: Path, table: str, stage: str) -> "Checkpoint":
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            if (data.get("table"), data.get("stage")) != (table, stage):
                raise SystemExit(f"{path} is the checkpoint of {data.get('table')} on {data.get('stage')}")
            return cls(**data)
        return cls(table, stage)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        tmp.replace(path)  # a checkpoint is whole or the previous one


def keyed_models() -> dict:
    """Table base name -> its model, for the tables whose items carry derived keys."""
    from chalicelib.adapters import models

    return {m.Meta.base_name: m for m in models.ALL_MODELS if m.Meta.base_name in KEYED_TABLES}


def fields_of(item) -> dict:
    """The item's attributes as stored (a map attribute as a dict)."""
    from pynamodb.attributes import MapAttribute

    out = {}
    for name in type(item).get_attributes():
        value = getattr(item, name, None)
        out[name] = value.as_dict() if isinstance(value, MapAttribute) else value
    return out


def changes(table: str, item) -> tuple[list, object] | None:
    """The update that gives ``item`` the keys it should carry, with the condition that it is
    still as read; None when its keys are right."""
    from chalicelib.adapters import keys

    model = type(item)
    fields = fields_of(item)
    actions, condition = [], None
    for name, wanted in keys.item_keys(table, fields).items():
        current = fields.get(name)
        if current == wanted:
            continue
        attr = getattr(model, name)
        actions.append(attr.set(wanted) if wanted is not None else attr.remove())
        same = attr == current if current is not None else attr.does_not_exist()
        condition = same if condition is None else condition & same
    if not actions:
        return None
    if "updated_at" in model.get_attributes():
        current = fields.get("updated_at")
        condition &= model.updated_at == current if current is not None else model.updated_at.does_not_exist()
    return actions, condition


def backfill(table: str, *, stage: str, checkpoint: Path, rate: float, page: int, max_items: int | None = None,
             restart: bool = False, limiter: Limiter | None = None, out=None) -> Checkpoint:
    """Scan ``table`` from its checkpoint and give each item its keys (progress to ``out``, by
    default stderr). Returns the checkpoint."""
    from chalicelib.adapters import models
    from chalicelib.adapters import repository as repo

    out = out or sys.stderr
    model = keyed_models()[table]
    models.bind()
    state = Checkpoint(table, stage) if restart else Checkpoint.load(checkpoint, table, stage)
    if state.done:
        print(f"{table}: done already ({state.scanned} scanned, {state.updated} given keys); "
              "--restart scans again", file=out)
        return state
    state.runs.append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    limiter = limiter or Limiter(rate)
    hash_key = model._hash_keyname
    started, this_run = time.monotonic(), 0
    while True:
        result = model.scan(limit=page, page_size=page, last_evaluated_key=state.last_key, consistent_read=True)
        for item in result:
            limiter.take()
            this_run += 1
            state.scanned += 1
            change = changes(table, item)
            if change is None:
                state.unchanged += 1
            elif repo.update(model(getattr(item, hash_key)), *change):
                state.updated += 1
            else:
                state.changed_meanwhile += 1
        state.last_key = result.last_evaluated_key
        state.done = not state.last_key
        state.save(checkpoint)
        speed = this_run / max(time.monotonic() - started, 1e-6)
        print(f"{table}: {state.scanned} scanned, {state.updated} given keys, {state.unchanged} already right, "
              f"{state.changed_meanwhile} changed meanwhile, {speed:.1f} items/s"
              + ("; done" if state.done else ""), file=out, flush=True)
        if state.done:
            return state
        if max_items is not None and this_run >= max_items:
            print(f"{table}: stopped after {this_run} items; run it again to go on", file=out)
            return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(KEYED_TABLES))
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "prod")
    parser.add_argument("--rate", type=float, default=100.0, help="items read a second, at most (default 100)")
    parser.add_argument("--page", type=int, default=100, help="items a Scan page (default 100)")
    parser.add_argument("--checkpoint", type=Path, help="default deploy/out/backfill-<stage>-<table>.json")
    parser.add_argument("--restart", action="store_true", help="scan from the start, whatever the checkpoint")
    parser.add_argument("--max-items", type=int, help="stop after this many items (go on with another run)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.page < 1:
        parser.error("--rate and --page must be positive")
    os.environ["STAGE"], os.environ["TABLE_PREFIX"] = args.stage, f"{args.stage}-"
    checkpoint = args.checkpoint or ROOT / "deploy" / "out" / f"backfill-{args.stage}-{args.table}.json"
    try:
        backfill(args.table, stage=args.stage, checkpoint=checkpoint, rate=args.rate, page=args.page,
                 max_items=args.max_items, restart=args.restart)
    except KeyboardInterrupt:
        print(f"{args.table}: interrupted; the checkpoint {checkpoint} has the last whole page", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

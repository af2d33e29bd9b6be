"""Paging DynamoDB reads: one index partition, or a sharded index read over its shards and
merged, each page ending in an opaque cursor signed for its query (``adapters/cursors.py``).
Every list of the service pages through here, and every cursor is checked in one place."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..domain.errors import ValidationError, invalid
from . import cursors


def encode_cursor(last_key: dict | None, scope: str) -> str | None:
    """The opaque, signed cursor of ``last_key`` for the query named ``scope`` (adapters/cursors.py)."""
    if not last_key:
        return None
    return cursors.sign(last_key, scope)


def decode_cursor(cursor: str | None, scope: str, key_names: frozenset[str] | None = None) -> dict | None:
    """The DynamoDB start key inside a cursor issued for the query ``scope``; it must name exactly
    the keys of the index being read, each a string or number value, or it is refused as a bad
    request (400 VALIDATION_ERROR), whatever is wrong with it."""
    if not cursor:
        return None
    try:
        value = cursors.verify(cursor, scope)
    except (ValueError, TypeError):
        raise _bad_cursor() from None
    return _checked_start(value, key_names)


_NUMBER = re.compile(r"^-?[0-9]{1,38}(\.[0-9]{1,38})?$")


def _scope(model, index, hash_key, newest_first: bool, filter_condition, range_key_condition=None) -> str:
    """The query a page belongs to: a cursor is valid only for the same one."""
    parts = [model.__name__, index.Meta.index_name, f"{type(hash_key).__name__}:{hash_key}",
             str(filter_condition) if filter_condition is not None else "",
             "desc" if newest_first else "asc"]
    if range_key_condition is not None:
        parts.append(str(range_key_condition))
    return "|".join(parts)


def _key_names(model, index=None) -> frozenset[str]:
    names = {model._hash_keyname}
    if model._range_keyname:
        names.add(model._range_keyname)
    if index is not None:
        names.update(k["AttributeName"] for k in index._get_schema()["key_schema"])
    return frozenset(names)


@dataclass
class Page:
    items: list
    next_cursor: str | None


def page(model, index, hash_key, *, newest_first: bool, limit: int, cursor: str | None,
          filter_condition=None, range_key_condition=None) -> Page:
    """Read up to ``limit`` items of one index partition (within ``range_key_condition``, when
    given), following DynamoDB pages when a filter thins them. The cursor is the opaque start key
    of the next page."""
    scope = _scope(model, index, hash_key, newest_first, filter_condition, range_key_condition)
    start = decode_cursor(cursor, scope, _key_names(model, index))
    items: list = []
    while True:
        result = index.query(hash_key, range_key_condition, scan_index_forward=not newest_first,
                             limit=limit - len(items), last_evaluated_key=start, filter_condition=filter_condition)
        items.extend(result)
        start = result.last_evaluated_key
        if len(items) >= limit or not start:
            break
    return Page(items, encode_cursor(start, scope) if len(items) >= limit and start else None)


def _resume_names(model, index) -> list[str]:
    """The key attributes (other than the index's partition key) that resume an index query."""
    schema = index._get_schema()["key_schema"]
    index_range = [k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"]
    table = [model._hash_keyname] + ([model._range_keyname] if model._range_keyname else [])
    return index_range + [n for n in table if n not in index_range]


def _resume_of(model, index, item) -> list[str]:
    """Where to resume a shard right after ``item``: its key values, compactly (the shard's own
    partition key is known from its position)."""
    attrs = model.get_attributes()
    return [str(attrs[n].serialize(getattr(item, n))) for n in _resume_names(model, index)]


def _start_from(model, index, hash_key: str, values) -> dict:
    """The DynamoDB start key of a shard from its compact resume values (checked like any key)."""
    names = _resume_names(model, index)
    attrs = model.get_attributes()
    hash_name = next(k["AttributeName"] for k in index._get_schema()["key_schema"] if k["KeyType"] == "HASH")
    if not isinstance(values, list) or len(values) != len(names) or not all(isinstance(v, str) for v in values):
        raise _bad_cursor()
    key = {hash_name: {"S": hash_key}}
    key.update({n: {attrs[n].attr_type: v} for n, v in zip(names, values)})
    return _checked_start(key, _key_names(model, index))


def fanout_page(model, index, hash_keys: list[str], sort_attr: str, *, newest_first: bool, limit: int,
                 cursor: str | None, filter_condition=None, range_key_condition=None) -> Page:
    """``_page`` over an index whose partition key is sharded (or over several partitions, e.g.
    every status): each partition is read from where the cursor left it (up to ``limit`` items,
    within ``range_key_condition`` when given), merged in ``sort_attr`` order, and the first
    ``limit`` items are the page. The cursor holds each partition's resume key (None once one is
    used up) and is signed for this query like any other."""
    scope = _scope(model, index, ",".join(hash_keys), newest_first, filter_condition, range_key_condition) + "|fanout"
    starts: list = [None] * len(hash_keys)
    done = [False] * len(hash_keys)
    if cursor:
        try:
            keys = cursors.verify(cursor, scope).get("s")
        except (ValueError, TypeError):
            keys = None
        if not isinstance(keys, list) or len(keys) != len(hash_keys):
            raise _bad_cursor()
        for i, key in enumerate(keys):
            if key == 0:
                done[i] = True
            elif key is not None:
                starts[i] = _start_from(model, index, hash_keys[i], key)
    runs = []
    for i, hash_key in enumerate(hash_keys):
        items: list = []
        start, more = starts[i], not done[i]
        while more and len(items) < limit:
            result = index.query(hash_key, range_key_condition, scan_index_forward=not newest_first,
                                 limit=limit - len(items),
                                 last_evaluated_key=start, filter_condition=filter_condition)
            items.extend((i, it) for it in result)
            start = result.last_evaluated_key
            more = bool(start)
        runs.append((items, more))
    table_keys = [model._hash_keyname] + ([model._range_keyname] if model._range_keyname else [])

    def order(entry):
        return (getattr(entry[1], sort_attr), *(getattr(entry[1], k) for k in table_keys))

    merged = sorted((e for items, _ in runs for e in items), key=order, reverse=newest_first)
    page = merged[:limit]
    taken = [0] * len(hash_keys)
    last: list = [None] * len(hash_keys)
    for shard, item in page:
        taken[shard] += 1
        last[shard] = item
    next_keys = []
    for i, (items, more) in enumerate(runs):
        if done[i] or (taken[i] == len(items) and not more):
            next_keys.append(0)  # used up
        elif last[i] is not None:
            next_keys.append(_resume_of(model, index, last[i]))
        elif starts[i] is not None:  # nothing of it on this page: resume where it was
            next_keys.append([starts[i][n][next(iter(starts[i][n]))] for n in _resume_names(model, index)])
        else:
            next_keys.append(None)  # not started
    has_more = any(k != 0 for k in next_keys)
    return Page([item for _, item in page], cursors.sign({"s": next_keys}, scope) if has_more else None)


MAX_TIES = 50  # items sharing one sort value a merged cursor may name


def merged_page(model, index, hash_keys: list[str], sort_attr: str, *, newest_first: bool, limit: int,
                cursor: str | None, filter_condition=None, bounds: tuple[str, str] | None = None) -> Page:
    """A page merged over many partitions (e.g. every shard of every status: too many for
    ``fanout_page``'s one resume key per partition to fit a cursor). The cursor is the boundary
    instead: the last sort value served (``sort_attr``, a string) and the table keys served at
    exactly that value; each partition is read again from the boundary (within ``bounds``, the
    inclusive range of the sort value, when given) and what was served is left out. A page costs
    up to ``limit`` items read per partition, like ``fanout_page``."""
    scope = _scope(model, index, ",".join(hash_keys), newest_first, filter_condition) + f"|merged|{bounds}"
    lo, hi = bounds or (" ", "\uffff")  # every stored time sorts between these (a key value cannot be empty)
    boundary, seen = None, set()
    if cursor:
        try:
            value = cursors.verify(cursor, scope)
        except (ValueError, TypeError):
            raise _bad_cursor() from None
        boundary, served = (value.get("at"), value.get("seen")) if isinstance(value, dict) else (None, None)
        if not isinstance(boundary, str) or not isinstance(served, list) or not 0 < len(served) <= MAX_TIES \
                or not all(isinstance(k, str) for k in served):
            raise _bad_cursor()
        seen = set(served)
        lo, hi = (lo, min(hi, boundary)) if newest_first else (max(lo, boundary), hi)
    attr = getattr(model, sort_attr)
    key_name = model._hash_keyname

    def fresh(item) -> bool:
        return not (getattr(item, sort_attr) == boundary and getattr(item, key_name) in seen)

    merged, more = [], False
    for hash_key in hash_keys:
        got, start = [], None
        while len(got) < limit:
            result = index.query(hash_key, attr.between(lo, hi) if bounds or cursor else None, scan_index_forward=not newest_first,
                                 limit=limit - len(got) + len(seen), last_evaluated_key=start,
                                 filter_condition=filter_condition)
            got.extend(item for item in result if fresh(item))
            start = result.last_evaluated_key
            if not start:
                break
        more = more or bool(start)
        merged.extend(got)
    merged.sort(key=lambda it: (getattr(it, sort_attr), getattr(it, key_name)), reverse=newest_first)
    page = merged[:limit]
    if not page or not (more or len(merged) > limit):
        return Page(page, None)
    last = getattr(page[-1], sort_attr)
    ties = (seen if last == boundary else set()) | {getattr(it, key_name) for it in page if getattr(it, sort_attr) == last}
    if len(ties) > MAX_TIES:
        raise invalid("cursor", f"超过 {MAX_TIES} 条记录时间完全相同，无法分页：请缩小筛选范围")
    return Page(page, cursors.sign({"at": last, "seen": sorted(ties)}, scope))


def _bad_cursor() -> ValidationError:
    return invalid("cursor", "不是本列表的分页游标：请使用同一列表上一页返回的 next_cursor")


def _checked_start(value, names: frozenset[str] | None) -> dict:
    """A start key from a (signed) cursor: it names exactly the keys ``names`` of the index being
    read (when given), each a string or number value; anything else is refused (400), whatever
    is wrong with it. The one check of every cursor, single-query or fan-out."""
    if not isinstance(value, dict) or (names is not None and set(value) != names):
        raise _bad_cursor()
    for attr in value.values():
        if not (isinstance(attr, dict) and len(attr) == 1):
            raise _bad_cursor()
        (kind, raw), = attr.items()
        if kind not in ("S", "N") or not isinstance(raw, str) or (kind == "N" and not _NUMBER.match(raw)):
            raise _bad_cursor()
    return value


def fanout_due(index, hash_keys: list[str], condition, limit: int, sort_attr: str) -> list:
    """The first ``limit`` items due over every shard of a sparse work index, oldest due first:
    one Query per shard (the cost follows the backlog, never the history)."""
    items = []
    for hash_key in hash_keys:
        items.extend(index.query(hash_key, condition, limit=limit))
    return sorted(items, key=lambda it: getattr(it, sort_attr))[:limit]

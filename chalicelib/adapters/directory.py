"""The staff directory (table ``staff_directory``): which person a sign-in identity is, and
which player accounts a person holds. Read on every staff request, so what it says is kept per
container for ``STAFF_DIRECTORY_CACHE_SECONDS`` (a change reaches every container within that
time); written by ``python -m deploy.staff_directory``."""
from __future__ import annotations

import threading
import time

from pynamodb.exceptions import DoesNotExist

from .. import config
from . import models
from .models import StaffIdentity, StaffPerson

_lock = threading.Lock()
_cache: dict[str, tuple[float, object]] = {}


def identity_entry(issuer: str, subject: str) -> str:
    return f"identity#{issuer}#{subject}"


def person_entry(person: str) -> str:
    return f"person#{person}"


def _cached(entry: str, read):
    ttl = config.identity_settings().directory_cache_seconds
    now = time.monotonic()
    with _lock:
        known = _cache.get(entry)
        if known is not None and now - known[0] < ttl:
            return known[1]
    value = read()
    with _lock:
        _cache[entry] = (now, value)
    return value


def person_of(issuer: str, subject: str) -> str | None:
    """The person the directory maps identity (``issuer``, ``subject``) to; None when it has none."""
    def read():
        models.bind()
        try:
            return StaffIdentity.get(identity_entry(issuer, subject)).person
        except DoesNotExist:
            return None

    return _cached(identity_entry(issuer, subject), read)


def players_of(person: str) -> frozenset[str]:
    """The player accounts (user_ids) ``person`` holds."""
    def read():
        models.bind()
        try:
            return frozenset(StaffPerson.get(person_entry(person)).players or ())
        except DoesNotExist:
            return frozenset()

    return _cached(person_entry(person), read)


def link_identity(issuer: str, subject: str, person: str, *, now: str) -> None:
    """Identity (``issuer``, ``subject``, as its issuer compares it) is ``person``."""
    models.bind()
    StaffIdentity(identity_entry(issuer, subject), person=person, updated_at=now).save()
    forget()


def set_players(person: str, players: frozenset[str], *, now: str) -> None:
    """``person`` holds exactly the player accounts ``players``."""
    models.bind()
    StaffPerson(person_entry(person), players=set(players) or None, updated_at=now).save()
    forget()


def forget() -> None:
    """Drop what this process kept (the next read asks the table)."""
    with _lock:
        _cache.clear()

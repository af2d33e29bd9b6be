"""Tell the service who is one person: the staff directory (``docs/sign-in.md``, "One person").

    python -m deploy.staff_directory link --stage prod --issuer local --subject Alice --person alice
    python -m deploy.staff_directory link --stage prod --issuer https://login.shop.example/realms/staff \\
        --subject 0b7e4c1a-... --person alice
    python -m deploy.staff_directory players --stage prod --person alice u1001 u2002   # accounts alice holds
    python -m deploy.staff_directory show --stage prod --issuer local --subject alice

A subject is stored as its issuer compares it (``CASE_INSENSITIVE_ISSUERS``), so ``Alice`` and
``ａｌｉｃｅ`` of a case-insensitive issuer are one entry. Every container sees a change within
``STAFF_DIRECTORY_CACHE_SECONDS`` (60). The credentials need ``dynamodb:PutItem`` and
``dynamodb:GetItem`` on ``<stage>-staff_directory``.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "prod")
    commands = parser.add_subparsers(dest="command", required=True)
    link = commands.add_parser("link", help="identity (issuer, subject) is person")
    show = commands.add_parser("show", help="the person of an identity, and the player accounts they hold")
    for sub in (link, show):
        sub.add_argument("--issuer", required=True, help='"local" for shared-secret tokens, else the OIDC issuer')
        sub.add_argument("--subject", required=True)
    link.add_argument("--person", required=True)
    players = commands.add_parser("players", help="the player accounts (user_ids) a person holds, all of them")
    players.add_argument("--person", required=True)
    players.add_argument("user_ids", nargs="*")
    args = parser.parse_args(argv)
    os.environ["STAGE"], os.environ["TABLE_PREFIX"] = args.stage, f"{args.stage}-"

    from chalicelib import config
    from chalicelib.adapters import directory
    from chalicelib.domain import clock
    from chalicelib.domain import staff as staff_rules

    def compared(issuer: str, text: str) -> str:
        """``text`` as ``issuer`` compares it (a person: as the shared-secret subjects are)."""
        value = staff_rules.normalise_subject(text.strip(), issuer in config.identity_settings().case_insensitive_issuers)
        if not value or not value.isprintable():
            parser.error(f"{text!r} is not a printable name")
        return value

    now = clock.iso(clock.now())
    if args.command == "link":
        subject, person = compared(args.issuer, args.subject), compared(staff_rules.LOCAL_ISSUER, args.person)
        directory.link_identity(args.issuer, subject, person, now=now)
        print(f"{args.issuer} {subject} -> {person}", file=out)
    elif args.command == "players":
        person = compared(staff_rules.LOCAL_ISSUER, args.person)
        directory.set_players(person, frozenset(u.strip() for u in args.user_ids if u.strip()), now=now)
        print(f"{person} holds {sorted(directory.players_of(person)) or 'no player account'}", file=out)
    else:
        subject = compared(args.issuer, args.subject)
        person = directory.person_of(args.issuer, subject) or staff_rules.person_of_identity(args.issuer, subject)
        print(f"{args.issuer} {subject} -> {person}; holds {sorted(directory.players_of(person)) or 'none'}",
              file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

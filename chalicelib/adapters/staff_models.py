"""pynamodb models of the staff: an operator's daily allowance counter, the activity log and the
staff directory (identities and people)."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from pynamodb.models import Model


class OperatorDay(Model):
    """One operator's refunds sent straight to WeChat on one Beijing day: the daily allowance.
    ``used`` grows by one conditional update per refund sent, before the refund's transaction, on
    the condition that it stays within the role's daily limit; it is given back when WeChat refuses
    the refund or the transaction fails (adapters/staff.py). Expires a while after the day."""

    class Meta:
        table_name = "operator_daily_totals"
        base_name = "operator_daily_totals"

    operator = UnicodeAttribute(hash_key=True)  # the person (the actor's subject)
    day = UnicodeAttribute(range_key=True)  # YYYY-MM-DD, Beijing time
    used = NumberAttribute(default=0)  # fen
    refunds = NumberAttribute(default=0)
    updated_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # epoch seconds, the table's TTL attribute


class ActivityByOperator(GlobalSecondaryIndex):
    """One partition per operator, sorted by time: the activity view is one Query over a time range."""

    class Meta:
        index_name = "by_operator"
        projection = AllProjection()

    operator = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)


class StaffActivity(Model):
    """What an operator did to a refund (created, approved, rejected, paid or cancelled offline),
    written in the transaction of that change. Read through ``by_operator`` (never a Scan)."""

    class Meta:
        table_name = "staff_activity"
        base_name = "staff_activity"

    activity_id = UnicodeAttribute(hash_key=True)  # "<refund_no>#<action>#<at>": one per change
    operator = UnicodeAttribute()  # the person (the actor's subject)
    sort_key = UnicodeAttribute()  # "<at ISO UTC>#<refund_no>#<action>"
    at = UnicodeAttribute()
    actor = UnicodeAttribute()  # role:subject at the time
    action = UnicodeAttribute()  # StaffAction
    refund_no = UnicodeAttribute()
    order_no = UnicodeAttribute()
    amount = NumberAttribute()  # fen: the refund's amount after the action
    status = UnicodeAttribute()  # the refund's status after the action
    origin = UnicodeAttribute(null=True)  # RefundOrigin of the refund
    detail = UnicodeAttribute(null=True)

    by_operator = ActivityByOperator()


class StaffIdentity(Model):
    """The staff directory: which person a sign-in identity (issuer, subject) is. Shares the
    ``staff_directory`` table with the people (``entry`` = "identity#<issuer>#<subject>")."""

    class Meta:
        table_name = "staff_directory"
        base_name = "staff_directory"

    entry = UnicodeAttribute(hash_key=True)
    person = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)


class StaffPerson(Model):
    """A person of the staff directory and the player accounts they hold (``entry`` = "person#<person>")."""

    class Meta:
        table_name = "staff_directory"
        base_name = "staff_directory"

    entry = UnicodeAttribute(hash_key=True)
    players = UnicodeSetAttribute(null=True)  # user_ids of the player accounts the person holds
    updated_at = UnicodeAttribute(null=True)

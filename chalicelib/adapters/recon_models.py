"""pynamodb models of the reconciliation (对账): a day's run and its discrepancies (one table)."""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from pynamodb.models import Model


class ReconRun(Model):
    """One day's reconciliation against WeChat's trade bill: its status, figures and checkpoint.
    Shares the ``reconciliations`` table with its discrepancies (``sk`` = "RUN")."""

    class Meta:
        table_name = "reconciliations"
        base_name = "reconciliations"

    bill_date = UnicodeAttribute(hash_key=True)  # Beijing date, YYYY-MM-DD
    sk = UnicodeAttribute(range_key=True, default="RUN")
    status = UnicodeAttribute()  # ReconStatus
    generation = NumberAttribute(default=0)  # bumped by every fresh run of the date
    reason = UnicodeAttribute(null=True)  # why it failed, or why the bill is not there
    started_by = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    duration_ms = NumberAttribute(null=True)
    hash_value = UnicodeAttribute(null=True)  # SHA1 of the bill this generation read
    lease_until = UnicodeAttribute(null=True)  # a worker holds the run until then
    figures = JSONAttribute(null=True)  # counts, amounts per class, totals on both sides
    checkpoint = JSONAttribute(null=True)  # {"offset": lines done, "figures": partial figures}
    updated_at = UnicodeAttribute(null=True)
    refused = JSONAttribute(null=True)  # the last attempt whose bill was refused: {at, by, reason, code}


class ReconDiscrepancy(Model):
    """One discrepancy of one run (``sk`` = "D#<generation>#<class>#<number>")."""

    class Meta:
        table_name = "reconciliations"
        base_name = "reconciliations"

    bill_date = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    generation = NumberAttribute()
    cls = UnicodeAttribute()  # ReconClass
    kind = UnicodeAttribute()  # payment | refund
    order_no = UnicodeAttribute()
    refund_no = UnicodeAttribute(null=True)
    ours_amount = NumberAttribute(null=True)
    theirs_amount = NumberAttribute(null=True)
    ours_status = UnicodeAttribute(null=True)
    theirs_status = UnicodeAttribute(null=True)
    line_no = NumberAttribute(null=True)
    note = UnicodeAttribute(null=True)
    task_id = UnicodeAttribute(null=True)
    found_at = UnicodeAttribute()

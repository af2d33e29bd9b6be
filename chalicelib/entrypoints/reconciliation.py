"""Reconciliation routes (staff: viewing is orders.view, running reconcile.run), under /api/admin/reconciliations: run a date, list the
dates with their status, one day's report, its discrepancies as JSON pages or CSV."""
from __future__ import annotations

from chalice import Blueprint

from .. import config
from ..domain import reconciliation as recon_rules
from ..domain import staff as staff_rules
from ..domain.enums import Permission as P
from ..log import get_logger
from ..services import recon_reports as reports
from ..services import reconciliation as recon
from ..domain import clock
from .http import (JSON_TYPES, csv_response, endpoint, format_param, int_param, json_body, json_response, limit_param,
                   only_fields, query)

bp = Blueprint(__name__)
log = get_logger(__name__)


@bp.route("/", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def list_reconciliations(principal):
    query(bp.current_request, set())
    return reports.list_runs()


@bp.route("/", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.RECONCILE_RUN)
def run_reconciliation(principal):
    body = only_fields(json_body(bp.current_request), {"bill_date"})
    bill_date = recon_rules.parse_bill_date(body.get("bill_date"), clock.now())
    budget = config.recon_settings().api_budget_seconds
    report = recon.start(bill_date, actor=principal.actor, deadline=recon.Deadline(budget))
    return json_response(report, 202 if report["status"] == "running" else 200)


@bp.route("/{bill_date}", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def reconciliation_report(principal, bill_date):
    query(bp.current_request, set())
    return reports.report(recon_rules.parse_bill_date(bill_date, clock.now()))


@bp.route("/{bill_date}/discrepancies", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def reconciliation_discrepancies(principal, bill_date):
    p = query(bp.current_request, {"limit", "cursor", "format"})
    day = recon_rules.parse_bill_date(bill_date, clock.now())
    if format_param(p) == "csv":
        staff_rules.require(principal.staff_role, P.DATA_EXPORT)
        return csv_response(reports.export_csv(day, cursor=p.get("cursor"),
                                               limit=int_param(p, "limit", minimum=1, maximum=reports.CSV_PAGE_ROWS,
                                                               default=reports.CSV_PAGE_ROWS)))
    return reports.list_discrepancies(day, limit=limit_param(p), cursor=p.get("cursor"))


# ---------------------------------------------------------------- Lambda event handlers


def daily(context=None) -> dict:
    """The scheduled run (yesterday, Beijing); its metrics are emitted by the service."""
    return {"runs": [{"bill_date": r.get("bill_date"), "status": r.get("status")} for r in recon.run_daily(context)]}


def continue_record(body: str, context=None) -> dict | None:
    """One continuation message; raises on failure so SQS redelivers it (then the DLQ)."""
    try:
        return recon.continue_from_message(body, context)
    except (ValueError, KeyError, TypeError) as exc:
        log.error("reconciliation message is malformed; dropped", extra={"error": type(exc).__name__})
        return None

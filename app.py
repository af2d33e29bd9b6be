"""Refund service: the Chalice app. Routes live in blueprints; handlers stay thin."""
from chalice import Chalice, Cron, Rate

from chalicelib import config
from chalicelib.entrypoints import admin, complaints, meta, notify, player, reconciliation, workers
from chalicelib.entrypoints import console
from chalicelib.entrypoints import docs
from chalicelib.entrypoints import contract

app = Chalice(app_name="gacha-refunds")
app.register_blueprint(meta.bp, url_prefix="/api")
app.register_blueprint(docs.bp, url_prefix="/api")
app.register_blueprint(admin.bp, url_prefix="/api/admin")
app.register_blueprint(reconciliation.bp, url_prefix="/api/admin/reconciliations")
app.register_blueprint(complaints.bp, url_prefix="/api/admin/complaints")
app.register_blueprint(player.bp, url_prefix="/api/app")
app.register_blueprint(notify.bp, url_prefix="/api/pay/wechat/notify")
app.register_blueprint(console.bp)
app.register_middleware(contract.middleware(app), "http")  # every non-2xx answer is {"code", "message"}

WIRING = config.app_wiring()  # the decorators need these at import
RECON_CRON = Cron(*WIRING.recon_cron, "*", "*", "?", "*")


@app.on_sqs_message(queue=WIRING.restore_queue_name, batch_size=1)
def restore(event):
    """Restoration worker: batch size 1, raising on failure (SQS retries, then the DLQ)."""
    for record in event:
        workers.restore_record(record.body, record.to_dict().get("messageId"))


@app.schedule(Rate(WIRING.poll_every_minutes, unit=Rate.MINUTES))
def poll(event):
    """Reconciliation: overdue refunds are queried, lost restorations re-enqueued."""
    return workers.poll_and_sweep(getattr(event, "context", None))


@app.schedule(RECON_CRON)
def reconcile(event):
    """对账: yesterday's (Beijing) trade bill against our orders and refunds."""
    return reconciliation.daily(getattr(event, "context", None))


@app.on_sqs_message(queue=WIRING.recon_queue_name, batch_size=1)
def reconcile_continue(event):
    """A reconciliation that ran out of time continues from its checkpoint."""
    for record in event:
        reconciliation.continue_record(record.body, getattr(event, "context", None))


@app.schedule(Rate(WIRING.complaint_sweep_minutes, unit=Rate.MINUTES))
def complaints_sweep(event):
    """投诉: the complaint list swept for what no notification told, refund decisions followed up,
    deadlines watched."""
    return workers.sweep_complaints(getattr(event, "context", None))

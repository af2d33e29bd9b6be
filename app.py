"""Refund service: the Chalice app. Routes live in blueprints; handlers stay thin."""
import os

from chalice import Chalice, Cron, Rate

from chalicelib.entrypoints import admin, meta, notify, player, reconciliation, workers
from chalicelib.entrypoints import console
from chalicelib.entrypoints import docs
from chalicelib.entrypoints import contract

app = Chalice(app_name="gacha-refunds")
app.register_blueprint(meta.bp, url_prefix="/api")
app.register_blueprint(docs.bp, url_prefix="/api")
app.register_blueprint(admin.bp, url_prefix="/api/admin")
app.register_blueprint(reconciliation.bp, url_prefix="/api/admin/reconciliations")
app.register_blueprint(player.bp, url_prefix="/api/app")
app.register_blueprint(notify.bp, url_prefix="/api/pay/wechat/notify")
app.register_blueprint(console.bp)
app.register_middleware(contract.middleware(app), "http")  # every non-2xx answer is {"code", "message"}

RESTORE_QUEUE = os.environ.get("RESTORE_QUEUE_NAME", "local-refund-restore")
POLL_MINUTES = int(os.environ.get("POLL_EVERY_MINUTES", "2"))
RECON_QUEUE = os.environ.get("RECON_QUEUE_NAME", "local-reconciliation")
# EventBridge cron is UTC; WeChat's bill of a day is ready from about 10:00 Beijing (02:00 UTC)
RECON_CRON = Cron(int(os.environ.get("RECON_MINUTE_UTC", "30")), int(os.environ.get("RECON_HOUR_UTC", "2")),
                  "*", "*", "?", "*")


@app.on_sqs_message(queue=RESTORE_QUEUE, batch_size=1)
def restore(event):
    """Restoration worker: batch size 1, raising on failure (SQS retries, then the DLQ)."""
    for record in event:
        workers.restore_record(record.body, record.to_dict().get("messageId"))


@app.schedule(Rate(POLL_MINUTES, unit=Rate.MINUTES))
def poll(event):
    """Reconciliation: overdue refunds are queried, lost restorations re-enqueued."""
    return workers.poll_and_sweep(getattr(event, "context", None))


@app.schedule(RECON_CRON)
def reconcile(event):
    """对账: yesterday's (Beijing) trade bill against our orders and refunds."""
    return reconciliation.daily(getattr(event, "context", None))


@app.on_sqs_message(queue=RECON_QUEUE, batch_size=1)
def reconcile_continue(event):
    """A reconciliation that ran out of time continues from its checkpoint."""
    for record in event:
        reconciliation.continue_record(record.body, getattr(event, "context", None))

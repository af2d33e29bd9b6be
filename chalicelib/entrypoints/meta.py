"""Service metadata: health."""
from __future__ import annotations

from chalice import Blueprint

from .. import config
from .http import endpoint

bp = Blueprint(__name__)


@bp.route("/health", methods=["GET"])
@endpoint(bp, None)
def health(_principal):
    return {"status": "ok", "stage": config.stage()}

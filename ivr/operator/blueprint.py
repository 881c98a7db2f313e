"""The operator blueprints: everything under /operator/, admin pages under /operator/admin/."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "operator",
    __name__,
    url_prefix="/operator",
    template_folder="templates",
    static_folder="static",
)
admin_bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.register_blueprint(admin_bp)

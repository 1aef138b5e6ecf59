"""Who may get which layer, and the scope filter that applies to every query.

Why here and not in the API: features, tiles, the legend and exports must agree on what a
role sees, so the rule is written once, next to the layer definitions.
"""

from __future__ import annotations

from typing import Any, Protocol

from layers.catalogue import CATALOGUE, Layer


class Caller(Protocol):
    """Anything with a role and a scope (api.deps.Principal, antt.accounts.Account)."""

    role: str
    scope_level: str
    scope_code: str | None


class LayerError(Exception):
    """A layer request that cannot be served; carries a bilingual message and a status."""

    status = 400

    def __init__(self, vi: str, en: str, field: str | None = None) -> None:
        super().__init__(en)
        self.vi, self.en, self.field = vi, en, field


class LayerNotFound(LayerError):
    status = 404


class LayerForbidden(LayerError):
    status = 403


def visible_layers(caller: Caller) -> list[Layer]:
    """The catalogue as this caller may see it (incident points only for police/admin)."""
    return [layer for layer in CATALOGUE.values() if layer.visible_to(caller.role)]


def layer_for(layer_id: str, caller: Caller) -> Layer:
    """The layer, or LayerNotFound / LayerForbidden (naming the aggregate to use instead)."""
    layer = CATALOGUE.get(layer_id)
    if layer is None:
        raise LayerNotFound(f"Không có lớp dữ liệu '{layer_id}'",
                            f"No collection '{layer_id}'", "collectionId")
    if not layer.visible_to(caller.role):
        instead = layer.aggregate_for_others
        hint_vi = f"; hãy dùng lớp tổng hợp '{instead}'" if instead else ""
        hint_en = f"; use the aggregate collection '{instead}'" if instead else ""
        raise LayerForbidden(
            f"Vai trò '{caller.role}' không được xem lớp '{layer_id}'{hint_vi}",
            f"Role '{caller.role}' may not see collection '{layer_id}'{hint_en}",
            "collectionId")
    return layer


def scope_filter(layer: Layer, caller: Caller) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment restricting LAYER to the caller's province/commune (TRUE for 'all')."""
    if caller.scope_level == "all" or caller.scope_code is None:
        return "TRUE", {}
    sql = layer.scope_province if caller.scope_level == "province" else layer.scope_commune
    return f"({sql})", {"scope_code": caller.scope_code}

"""Account scope as SQL: a province- or commune-scoped account sees and edits only inside it.

Why SQL fragments: every query (items, counts, analytics) filters by scope on the server, next
to the data, with the same rule. Fragments use the bind names ``:scope_code``.
"""

from __future__ import annotations

from typing import Any

from api.deps import Principal


def commune_ids_sql(principal: Principal) -> str | None:
    """A sub-select of the commune ids this account may see, or None for nationwide accounts."""
    if principal.scope_level == "province":
        return ("SELECT id FROM admin_unit WHERE level = 'commune' "
                "AND province_code = :scope_code")
    if principal.scope_level == "commune":
        return "SELECT id FROM admin_unit WHERE level = 'commune' AND code = :scope_code"
    return None


def row_filter(principal: Principal, alias: str = "", *,
               incidents: bool = False) -> tuple[str, dict[str, Any]]:
    """`AND ...` restricting a table with a commune_id column to the account's scope.
    Incidents are scoped by today's commune holding them, else the commune of their date
    (geo.placement): a province account sees its incidents from before the 2025 merger too."""
    sub = commune_ids_sql(principal)
    if sub is None:
        return "", {}
    prefix = f"{alias}." if alias else ""
    col = (f"coalesce({prefix}commune_now_id, {prefix}commune_id)" if incidents
           else f"{prefix}commune_id")
    return f" AND {col} IN ({sub})", {"scope_code": principal.scope_code}


def unit_filter(principal: Principal, alias: str = "u") -> tuple[str, dict[str, Any]]:
    """`AND ...` restricting admin_unit rows (province, commune or village) to the scope."""
    if principal.scope_level == "province":
        return (f" AND ({alias}.province_code = :scope_code OR "
                f"({alias}.level = 'province' AND {alias}.code = :scope_code))",
                {"scope_code": principal.scope_code})
    if principal.scope_level == "commune":
        # A commune itself, or a village whose parent is that commune.
        return (f" AND (({alias}.level = 'commune' AND {alias}.code = :scope_code) OR "
                f"{alias}.parent_id IN (SELECT id FROM admin_unit WHERE level = 'commune' "
                "AND code = :scope_code))", {"scope_code": principal.scope_code})
    return "", {}


def commune_in_scope(principal: Principal, commune_code: str | None,
                     commune_province: str | None) -> bool:
    """Whether a commune (by its code and province) lies inside the account's scope."""
    if principal.scope_level == "all":
        return True
    if commune_code is None:
        return False
    if principal.scope_level == "province":
        return commune_province == principal.scope_code
    return commune_code == principal.scope_code

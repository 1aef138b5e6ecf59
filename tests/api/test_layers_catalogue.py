"""The catalogue itself: one definition per layer, consistent with the database and the roles."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from antt.accounts import ROLES
from api.deps import Principal
from layers.access import LayerForbidden, LayerNotFound, layer_for, scope_filter, visible_layers
from layers.catalogue import CATALOGUE
from layers.sql import LayerQuery, source_and_where

CONTRACT_IDS = {"provinces", "communes", "villages", "models", "fire_groups", "institutions",
                "launch_points", "incidents", "incident_hexagons", "incident_counts_commune",
                "incident_counts_village", "kpi_communes"}


def test_the_contract_collections_and_nothing_else():
    assert set(CATALOGUE) == CONTRACT_IDS


@pytest.mark.parametrize("role", ROLES)
def test_only_police_and_admin_see_incident_points(role):
    ids = {layer.id for layer in visible_layers(Principal("u", role))}
    assert ("incidents" in ids) == (role in ("admin", "police"))
    assert {"incident_hexagons", "incident_counts_commune", "incident_counts_village"} <= ids


def test_lookup_errors_name_the_stand_in():
    with pytest.raises(LayerForbidden) as err:
        layer_for("incidents", Principal("u", "committee"))
    assert "incident_hexagons" in err.value.en and "incident_hexagons" in err.value.vi
    with pytest.raises(LayerNotFound):
        layer_for("roads", Principal("u", "admin"))


def test_every_layer_is_bilingual_and_styled():
    for layer in CATALOGUE.values():
        assert layer.vi and layer.en and layer.vi != layer.en
        assert layer.legend, layer.id
        for entry in layer.legend:
            assert entry["label"]["vi"] and entry["label"]["en"]
        for prop in layer.properties:
            assert prop.vi and prop.en
        assert 0 <= layer.min_zoom < layer.max_zoom <= 24
        assert layer.tile_properties, f"{layer.id} draws nothing but geometry"


def test_scope_filter_binds_the_code():
    layer = CATALOGUE["models"]
    assert scope_filter(layer, Principal("u", "viewer")) == ("TRUE", {})
    sql, params = scope_filter(layer, Principal("u", "viewer", "commune", "11311"))
    assert ":scope_code" in sql and params == {"scope_code": "11311"}


@pytest.mark.parametrize("layer_id", sorted(CONTRACT_IDS))
def test_sources_yield_every_declared_property(engine, layer_id):
    """Run each source on the real schema: its columns are exactly fid, geom and the properties
    (plus underscored helpers), so the catalogue cannot drift from the tables."""
    layer = CATALOGUE[layer_id]
    source, where, params = source_and_where(LayerQuery(layer, Principal("u", "admin", "province", "31")))
    with engine.connect() as conn:
        result = conn.execute(text(f"SELECT t.* FROM {source} t WHERE {' AND '.join(where)} LIMIT 0"),
                              params)
        columns = list(result.keys())
    public = [c for c in columns if not c.startswith("_") and c not in ("fid", "geom")]
    assert {"fid", "geom"} <= set(columns)
    helpers = {"valid_from", "valid_to"} if layer.kind == "aggregate" else set()
    assert set(public) - helpers == {p.name for p in layer.properties}
    if layer.editable:
        assert "_version" in columns

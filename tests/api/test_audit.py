"""GET /audit (admin only, filters) and `antt user add/list/key`."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from antt.db import get_engine
from api.audit import record
from api.cli import app as user_app
from api.deps import Principal


def _seed() -> None:
    with get_engine().begin() as conn:
        alice, bob = Principal("alice", "planner"), Principal("bob", "police")
        record(conn, alice, "create", "models", 1, after={"name": "a"})
        record(conn, bob, "read_points", "incidents", None, detail={"count": 4})
        record(conn, alice, "delete", "models", 1, before={"name": "a"})


def test_audit_is_admin_only_and_filters(api_client, make_user):
    _seed()
    for role in ("police", "planner", "committee", "viewer"):
        assert api_client.get("/audit", headers=make_user(role)).status_code == 403
    admin = make_user("admin")
    page = api_client.get("/audit", headers=admin).json()
    assert [e["action"] for e in page["entries"]] == ["delete", "read_points", "create"]
    only = api_client.get("/audit", params={"user": "alice", "action": "delete"}, headers=admin).json()
    assert len(only["entries"]) == 1 and only["entries"][0]["before"] == {"name": "a"}
    future = api_client.get("/audit", params={"since": "2099-01-01T00:00:00Z"}, headers=admin).json()
    assert future["entries"] == []
    # An offset PostgreSQL refuses (+16:00) is converted to UTC first; years past 2100 are a 422.
    odd = api_client.get("/audit", params={"until": "2000-01-01T00:00:00+16:00"}, headers=admin)
    assert odd.status_code == 200 and odd.json()["entries"] == []
    far = api_client.get("/audit", params={"until": "2999-01-01T00:00:00Z"}, headers=admin)
    assert far.status_code == 422 and far.json()["errors"][0]["field"] == "query.until"
    bad = api_client.get("/audit", params={"since": "yesterday"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.since"
    assert api_client.get("/audit").status_code == 401


def test_audit_row_rolls_back_with_the_write(engine):
    with engine.connect() as conn:
        record(conn, Principal("x", "admin"), "create", "models", 9)
        conn.rollback()
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0


def test_user_cli_add_list_key(haiphong_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", haiphong_url)
    from antt.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    r = runner.invoke(user_app, ["add", "hoa", "--role", "committee", "--province", "31",
                                 "--password-stdin"], input="mot-mat-khau-dai\n")
    assert r.exit_code == 0, r.output
    assert "hoa\tcommittee\tprovince:31" in r.output
    r = runner.invoke(user_app, ["add", "x", "--role", "boss", "--password-stdin"],
                      input="mot-mat-khau-dai\n")
    assert r.exit_code == 2
    r = runner.invoke(user_app, ["add", "y", "--role", "viewer", "--commune", "99999", "--password-stdin"],
                      input="mot-mat-khau-dai\n")
    assert r.exit_code == 2
    r = runner.invoke(user_app, ["key", "hoa"])
    assert r.exit_code == 0 and r.output.startswith("antt_")
    r = runner.invoke(user_app, ["list"])
    assert r.exit_code == 0 and "hoa" in r.output and "province:31" in r.output
    r = runner.invoke(user_app, ["key", "nobody"])
    assert r.exit_code == 2
    get_settings.cache_clear()


def test_reads_of_incident_points_on_the_feature_endpoints_are_audited(layer_client, make_user):
    police = make_user("police", username="cong_an_doc")
    assert layer_client.get("/collections/incidents/items?limit=5", headers=police).status_code == 200
    assert layer_client.get("/collections/incidents/items/1", headers=police).status_code == 200
    assert layer_client.get("/collections/incident_hexagons/items", headers=police).status_code == 200
    with get_engine().connect() as conn:
        rows = conn.execute(text("SELECT username, entity_id, detail FROM audit_log "
                                 "WHERE action = 'read_points' ORDER BY id")).all()
    assert [(r.username, r.entity_id) for r in rows] == [("cong_an_doc", None), ("cong_an_doc", "1")]
    assert rows[0].detail["count"] == 5 and rows[0].detail["params"]["limit"] == "5"


def test_incident_tiles_with_points_are_audited(layer_client, make_user):
    police = make_user("police", username="cong_an_o")
    tiles = "/collections/incidents/tiles/WebMercatorQuad"
    assert layer_client.get(f"{tiles}/3/6/3", headers=police).status_code == 200
    assert layer_client.get(f"{tiles}/3/0/0", headers=police).status_code == 204
    with get_engine().connect() as conn:
        rows = conn.execute(text("SELECT detail FROM audit_log WHERE action = 'read_points'")).scalars().all()
    assert [r["tile"] for r in rows] == ["3/6/3"] and rows[0]["count"] == 13

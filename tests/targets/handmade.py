"""A small plan data set on the real Hải Phòng communes, every figure computable by hand.

Commune A (the smallest code) gets two villages (V1, V2), three institutions, four models, a
forum, a launch event and a launch point; commune B (the next code) one model founded in 2026.
Used by the KPI, review, report and Excel tests.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

HANDMADE_SQL = """
CREATE TEMP TABLE pick AS
SELECT row_number() OVER (ORDER BY code) AS k, id, code, province_code, ST_PointOnSurface(geom) AS pt
FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 2;

INSERT INTO admin_unit (level, code, kind, name, full_name, name_search, parent_id, province_code,
                        valid_from, is_synthetic, geom)
SELECT 'village', p.code || v.suffix, 'thôn', v.name, 'Thôn ' || v.name, v.search, p.id, p.province_code,
       '2025-07-01', true,
       ST_Multi(ST_CollectionExtract(ST_Intersection(c.geom,
           ST_Buffer(ST_Translate(p.pt, v.dx, 0)::geography, 400)::geometry), 3))
FROM pick p JOIN admin_unit c ON c.id = p.id
CROSS JOIN (VALUES ('-01', 'Một', 'mot', -0.004), ('-02', 'Hai', 'hai', 0.004)) v(suffix, name, search, dx)
WHERE p.k = 1;

-- institutions in V1 (placed by the trigger from their point)
INSERT INTO institution (kind, name, geom)
SELECT kind, name, ST_Translate(p.pt, -0.004 + dx, 0)
FROM pick p CROSS JOIN (VALUES ('agency', 'UBND xã', 0.0), ('school', 'Trường THCS', 0.0003),
                               ('enterprise', 'Công ty TNHH Một', -0.0003)) i(kind, name, dx)
WHERE p.k = 1;
INSERT INTO institution_year (institution_id, year, antt_safe, festival_held, launched, movement_class)
SELECT id, 2026, name <> 'Công ty TNHH Một', NULL, NULL, NULL FROM institution;

INSERT INTO unit_year (unit_id, year, launched, movement_class, festival_held)
SELECT id, 2026, code LIKE '%-01', CASE WHEN code LIKE '%-01' THEN 'kha' ELSE 'yeu' END, NULL
FROM admin_unit WHERE level = 'village';

INSERT INTO launch_point (name, theme, launch_date, status, village_id)
SELECT 'Phát động tại Thôn Hai', 'ANTQ', '2026-03-01', 'launched', id FROM admin_unit
WHERE level = 'village' AND code LIKE '%-02';

INSERT INTO movement_event (kind, title, held_on, commune_id, village_id, institution_id)
SELECT 'launch', 'Phát động tại trường', '2026-02-10', s.commune_id, s.village_id, s.id
FROM institution s WHERE s.name = 'Trường THCS';
INSERT INTO movement_event (kind, title, held_on, commune_id, place, participants)
SELECT 'forum', 'Công an xã lắng nghe ý kiến của nhân dân (lần 1)', '2026-04-10', id, 'Hội trường xã', 120
FROM pick WHERE k = 1;

-- models in V1: effective (tot), effective then dissolved 1 March 2026, average, new in 2026
INSERT INTO security_model (type_code, name, founded_on, status, status_since, geom)
SELECT t, n, f, s, ss, ST_Translate(p.pt, -0.004 + dx, 0.0002)
FROM pick p CROSS JOIN (VALUES
    ('to_tu_quan', 'M1 tốt', DATE '2020-05-01', 'active', NULL::date, 0.0),
    ('camera_antt', 'M2 giải thể', DATE '2021-05-01', 'dissolved', DATE '2026-03-01', 0.0001),
    ('dong_ho_tu_quan', 'M3 trung bình', DATE '2022-05-01', 'active', NULL, 0.0002),
    ('thanh_thieu_nien', 'M4 mới', DATE '2026-02-01', 'active', NULL, 0.0003)) m(t, n, f, s, ss, dx)
WHERE p.k = 1;
INSERT INTO security_model (type_code, name, founded_on, geom)
SELECT 'to_tu_quan', 'B mới', DATE '2026-05-05', pt FROM pick WHERE k = 2;
INSERT INTO model_rating (model_id, rating, rated_on)
SELECT id, CASE name WHEN 'M1 tốt' THEN 'tot' WHEN 'M2 giải thể' THEN 'kha' ELSE 'trung_binh' END,
       DATE '2025-11-15'
FROM security_model WHERE name IN ('M1 tốt', 'M2 giải thể', 'M3 trung bình');
"""


def load_handmade(engine: Engine) -> dict[str, str]:
    """Load the data set; returns the codes: commune_a, commune_b, village_1, village_2, province."""
    with engine.begin() as conn:
        for statement in HANDMADE_SQL.split(";\n"):
            if statement.strip():
                conn.execute(text(statement))
        a, b = conn.execute(text(
            "SELECT code FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 2")).scalars().all()
        province = conn.execute(text(
            "SELECT province_code FROM admin_unit WHERE code = :a AND level = 'commune'"),
            {"a": a}).scalar_one()
    return {"commune_a": a, "commune_b": b, "village_1": f"{a}-01", "village_2": f"{a}-02",
            "province": province}

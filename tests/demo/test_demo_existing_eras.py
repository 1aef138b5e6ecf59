"""`antt demo --existing` on a database that also holds pre-2025 units (qa13).

Found by hand: with the pre-2025 Hải Phòng (31) loaded next to the 2025 one, the demo picked
both rows of province code 31 and ended in a UniqueViolation traceback on plan (province, 31,
year). The demo works on the map of its own date: the 2025 provinces only.
"""

from __future__ import annotations

from sqlalchemy import text

from antt.db import make_engine
from data.demo.generate import EXISTING, generate

from .conftest import UNTIL


def _add_old_provinces(conn) -> None:
    """Pre-2025 province rows: Hải Phòng 31 (same code as today's) and Hải Dương 30 (gone)."""
    for code, name in (("31", "Hải Phòng (cũ)"), ("30", "Hải Dương")):
        conn.execute(text("""
            INSERT INTO admin_unit (level, code, name, full_name, name_search, province_code,
                                    valid_from, valid_to, geom)
            SELECT 'province', :code, :name, :name, lower(:name), :code, '-infinity', '2025-07-01',
                   geom FROM admin_unit WHERE level = 'province' AND code = '31' AND valid_to IS NULL
            """), {"code": code, "name": name})


def test_demo_on_existing_units_with_a_pre2025_province_of_the_same_code(haiphong_url):
    eng = make_engine(haiphong_url)
    try:
        with eng.begin() as conn:
            _add_old_provinces(conn)
            assert conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'province' "
                                     "AND code = '31'")).scalar_one() == 2
        result = generate(eng, EXISTING, province_code="31", incidents=300,
                                   villages_per_commune=2, years=2, until=UNTIL,
                                   password_for=lambda role: f"demo-{role}-pass")
        assert result.province_codes == ["31"]
        with eng.connect() as conn:
            plans = conn.execute(text("SELECT year, count(*) FROM plan WHERE unit_level = 'province' "
                                      "AND unit_code = '31' GROUP BY year ORDER BY year")).all()
        # One plan a year for the province (two rows of code 31 used to make two, and fail).
        assert plans and all(n == 1 for _, n in plans) and int(plans[-1][0]) == UNTIL.year
        # Without --province: today's provinces only (30 ended on 1 July 2025).
        again = generate(eng, EXISTING, incidents=300, villages_per_commune=2,
                                  years=2, until=UNTIL, password_for=lambda role: f"demo-{role}-pass")
        assert again.province_codes == ["31"]
    finally:
        eng.dispose()

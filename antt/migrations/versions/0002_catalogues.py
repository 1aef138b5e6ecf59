"""Reference catalogues: model types (editable) and the incident category taxonomy.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Model types named in the directives (seeds 000-004). Admins may add more.
MODEL_TYPES = [
    ("to_tu_quan", "Tổ tự quản về an ninh trật tự", "Self-managed security team", "users",
     "village"),
    ("dong_ho_tu_quan", "Dòng họ tự quản về ANTT", "Clan self-management", "people-roof",
     "village"),
    ("camera_antt", "Camera an ninh", "Security cameras", "video", "any"),
    ("tai_hoa_nhap", "Giúp đỡ người lầm lỗi tái hòa nhập cộng đồng",
     "Reintegration of former offenders", "handshake", "village"),
    ("an_toan_giao_thong", "Tuyến đường tự quản an toàn giao thông", "Traffic safety", "road",
     "village"),
    ("thanh_thieu_nien", "Quản lý, giáo dục phòng ngừa thanh thiếu niên có nguy cơ vi phạm pháp luật",
     "Youth-at-risk management", "child", "village"),
    ("truong_hoc_an_toan", "Trường học an toàn về ANTT", "Safe school", "school", "institution"),
    ("doanh_nghiep_an_toan", "Doanh nghiệp tự quản về ANTT", "Self-managed enterprise",
     "industry", "institution"),
    ("pccc_lien_gia", "Tổ liên gia an toàn PCCC (mô hình)", "Fire-safety household model",
     "fire-extinguisher", "village"),
]

# (code, parent, name_vi, name_en): the kinds DOMAIN.md names, as a path taxonomy.
CATEGORIES = [
    ("crime", None, "Tội phạm", "Crime"),
    ("crime/murder", "crime", "Giết người", "Murder"),
    ("crime/injury", "crime", "Cố ý gây thương tích", "Intentional injury"),
    ("crime/disorder", "crime", "Gây rối trật tự công cộng", "Public disorder"),
    ("crime/theft", "crime", "Trộm cắp tài sản", "Theft"),
    ("crime/robbery", "crime", "Cướp, cướp giật tài sản", "Robbery and snatching"),
    ("crime/fraud", "crime", "Lừa đảo chiếm đoạt tài sản", "Fraud"),
    ("crime/fraud/online", "crime/fraud", "Lừa đảo qua điện thoại, mạng", "Phone and online scams"),
    ("crime/drugs", "crime", "Ma túy", "Drugs"),
    ("crime/gambling", "crime", "Đánh bạc", "Gambling"),
    ("crime/weapons", "crime", "Vũ khí, vật liệu nổ, pháo", "Weapons, explosives, fireworks"),
    ("violation", None, "Vi phạm pháp luật khác", "Other violations"),
    ("fire", None, "Cháy, nổ", "Fire and explosion"),
    ("fire/fire", "fire", "Cháy", "Fire"),
    ("fire/explosion", "fire", "Nổ", "Explosion"),
    ("traffic", None, "Tai nạn giao thông", "Traffic accident"),
]


def upgrade() -> None:
    conn = op.get_bind()
    for row in MODEL_TYPES:
        conn.exec_driver_sql(
            "INSERT INTO model_type (code, name_vi, name_en, icon, host_kind) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (code) DO NOTHING", row)
    for row in CATEGORIES:
        conn.exec_driver_sql(
            "INSERT INTO incident_category (code, parent, name_vi, name_en) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (code) DO NOTHING", row)


def downgrade() -> None:
    op.execute("DELETE FROM incident_category; DELETE FROM model_type")

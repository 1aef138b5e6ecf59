from antt.text import fold, kind_of, strip_kind


def test_fold_strips_diacritics_and_d_stroke():
    assert fold("Tân Kỳ") == "tan ky"
    assert fold("  Đại   Sơn ") == "dai son"
    assert fold("Thành phố Hải Phòng") == "thanh pho hai phong"


def test_strip_kind_and_kind_of():
    assert strip_kind("Xã Tân Kỳ") == "Tân Kỳ"
    assert strip_kind("Thị trấn Tứ Kỳ") == "Tứ Kỳ"
    assert strip_kind("Tổ dân phố 5") == "5"
    assert kind_of("Đặc khu Bạch Long Vĩ") == "đặc khu"
    assert kind_of("Phường Thành Đông") == "phường"
    assert kind_of("Tân Kỳ") is None

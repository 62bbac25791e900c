"""domain/appearance.py: what a host may set of a portal session's look, and what it is told otherwise."""

from __future__ import annotations

import pytest

from domain.appearance import MAX_LOGO_URL, check_accent_color, check_logo_url, check_title, origin_of


def test_a_title_is_one_line_of_plain_text_of_bounded_length() -> None:
    assert check_title("  Acme · Webhooks ") == "Acme · Webhooks"
    assert check_title("Ünïcode & ampersands") == "Ünïcode & ampersands"  # shown as text: & is harmless
    for bad, said in [
        ("", "at least one character"),
        ("a" * 81, "at most 80"),
        ("a\tb", "one line"),
        ("a\u0000b", "one line"),
        ("<script>", "no markup"),
        ("a > b", "no markup"),
    ]:
        with pytest.raises(ValueError, match=said):
            check_title(bad)


def test_an_accent_is_hash_and_six_hex_digits() -> None:
    assert check_accent_color("#0F9D58") == "#0f9d58"
    for bad in ("#0f9", "0f9d58", "#0f9d58 ", "#0f9d58;", "rgb(0,0,0)", "#gggggg", "#0f9d58\n"):
        with pytest.raises(ValueError, match="#rrggbb"):
            check_accent_color(bad)


def test_a_logo_is_https_or_http_on_this_machine() -> None:
    for good in (
        "https://app.example.com/logo.svg",
        "https://app.example.com:8443/a/logo.png?v=2",
        "http://127.0.0.1:8400/logo.svg",
        "http://localhost/logo.svg",
        "http://[::1]:9000/logo.svg",
    ):
        assert check_logo_url(good) == good
    for bad, said in [
        ("http://app.example.com/logo.svg", "https URL"),
        ("javascript:alert(1)", "https URL"),
        ("data:image/png;base64,AAAA", "https URL"),
        ("//app.example.com/logo.svg", "https URL"),
        ("https:///logo.svg", "https URL"),
        ("https://app.example.com/a b.svg", "https URL"),
        ("https://app.example.com/a'.svg", "https URL"),
        ("https://app.example.com:99999/logo.svg", "https URL"),
        ("https://u:p@app.example.com/logo.svg", "no user name"),
        ("https://app.example.com/" + "a" * MAX_LOGO_URL, f"at most {MAX_LOGO_URL}"),
    ]:
        with pytest.raises(ValueError, match=said):
            check_logo_url(bad)


def test_a_logos_origin_is_spelled_as_browsers_spell_it() -> None:
    assert origin_of("https://App.Example.com:443/x") == "https://app.example.com"
    assert origin_of("https://app.example.com:8443/x") == "https://app.example.com:8443"
    assert origin_of("http://127.0.0.1:8400/logo.svg") == "http://127.0.0.1:8400"
    assert origin_of("http://[::1]:9000/x") == "http://[::1]:9000"

"""The UI's languages: Indonesian by default, English on request."""

from __future__ import annotations

from dashboards.web.i18n import STRINGS, pick_language, strings


def test_indonesian_unless_asked_otherwise() -> None:
    assert pick_language(None, None) == "id"
    assert pick_language("fr", "de") == "id"


def test_the_query_wins_over_the_cookie() -> None:
    assert pick_language("en", "id") == "en"
    assert pick_language(None, "en") == "en"
    assert pick_language("id", "en") == "id"


def test_every_string_exists_in_both_languages_with_the_same_placeholders() -> None:
    for key, (indonesian, english) in STRINGS.items():
        assert indonesian.strip(), key
        assert english.strip(), key
        holes = {part.split("}")[0] for part in indonesian.split("{")[1:]}
        assert holes == {part.split("}")[0] for part in english.split("{")[1:]}, key
    assert strings("en")["nav.incidents"] == "Incidents"
    assert strings("id")["nav.incidents"] == "Insiden"

"""Scopes and the registry's regencies: who may see which regency, and what an admin may give."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.scopes import DEPLOYMENT, Scope, ScopeError
from devices.stations import StationFileError, load_stations, parse_stations
from tests.conftest import STATIONS_FILE

PROVINCES = {
    "Way Kanan": "Lampung",
    "Tulang Bawang": "Lampung",
    "Jember": "Jawa Timur",
    "Rembang": "Jawa Tengah",
}
STATION = (
    "{{id: {id}, name: G, regency: {regency}, latitude: -4, longitude: 105, "
    "metrics: {{level_cm: {{unit: cm, min: 0, max: 9}}}}}}"
)


def document(regencies: str, *stations: tuple[str, str]) -> str:
    entries = "".join(f"  - {STATION.format(id=i, regency=r)}\n" for i, r in stations)
    return f"{regencies}stations:\n{entries}"


def test_the_shipped_registry_gives_every_regency_a_province() -> None:
    registry = load_stations(STATIONS_FILE)
    provinces = registry.provinces()
    assert {s.regency for s in registry.stations()} <= provinces.keys()
    assert provinces["Tulang Bawang"] == "Lampung"
    assert provinces["Way Kanan"] == "Lampung"


def test_regencies_are_given_once_and_read_as_a_map() -> None:
    text = document(
        "regencies:\n  Jember: {province: Jawa Timur}\n  Rembang: {province: Jawa Tengah}\n",
        ("a-1", "Jember"),
        ("a-2", "Rembang"),
    )
    assert parse_stations(text).provinces() == {"Jember": "Jawa Timur", "Rembang": "Jawa Tengah"}


def test_without_a_regencies_section_no_regency_has_a_province() -> None:
    assert parse_stations(document("", ("a-1", "Jember"))).provinces() == {}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("regencies: [Jember]\n", "'regencies' must be a mapping"),
        ("regencies:\n  Jember: {}\n", "regencies.Jember: province: Field required"),
        ("regencies:\n  Jember: {province: ''}\n", "regencies.Jember: province"),
        ("regencies:\n  Jember: {province: X, island: Jawa}\n", "regencies.Jember: island"),
        ("regencies:\n  Jember: Jawa Timur\n", "regencies.Jember"),
        ("regencies:\n  Rembang: {province: Jawa Tengah}\n", "regency 'Jember' is not listed"),
    ],
)
def test_a_bad_regencies_section_is_refused_saying_why(section: str, message: str) -> None:
    with pytest.raises(StationFileError, match=message):
        parse_stations(document(section, ("a-1", "Jember")), "t.yaml")


def test_a_scope_is_regencies_or_a_province_or_everything() -> None:
    assert DEPLOYMENT.deployment_wide
    assert DEPLOYMENT.kind == "deployment"
    assert Scope.of(["Jember"]).kind == "regencies"
    assert Scope.of(province="Lampung").kind == "province"
    assert Scope.of([], "") == DEPLOYMENT
    with pytest.raises(ScopeError, match="not both"):
        Scope.of(["Jember"], "Lampung")


def test_a_province_scope_reaches_the_regencies_the_registry_puts_in_it() -> None:
    lampung = Scope.of(province="Lampung")
    assert lampung.reach(PROVINCES) == {"Way Kanan", "Tulang Bawang"}
    assert lampung.allows("Tulang Bawang", PROVINCES)
    assert not lampung.allows("Jember", PROVINCES)
    assert not lampung.allows("Nowhere", PROVINCES)
    assert Scope.of(["Jember"]).reach(PROVINCES) == {"Jember"}
    assert DEPLOYMENT.reach(PROVINCES) is None


def test_contains_a_station_by_its_regency() -> None:
    [station] = parse_stations(document("", ("a-1", "Jember"))).stations()
    assert Scope.of(["Jember"]).contains(station, PROVINCES)
    assert not Scope.of(["Rembang"]).contains(station, PROVINCES)
    assert DEPLOYMENT.contains(station, {})


def test_what_an_admin_may_give() -> None:
    lampung = Scope.of(province="Lampung")
    assert DEPLOYMENT.covers(lampung, PROVINCES)
    assert lampung.covers(Scope.of(["Tulang Bawang"]), PROVINCES)
    assert lampung.covers(lampung, PROVINCES)
    assert not lampung.covers(Scope.of(["Jember"]), PROVINCES)
    assert not lampung.covers(DEPLOYMENT, PROVINCES)
    tb = Scope.of(["Tulang Bawang"])
    # A province is more than its regencies today: the registry may add one to it later.
    assert not Scope.of(["Tulang Bawang", "Way Kanan"]).covers(lampung, PROVINCES)
    assert not tb.covers(Scope.of(["Tulang Bawang", "Jember"]), PROVINCES)


def test_names_the_registry_does_not_know_are_refused() -> None:
    assert Scope.of(["Jember"]).check(PROVINCES, ["Jember"]).regencies == {"Jember"}
    with pytest.raises(ScopeError, match="no regency 'Jembr'"):
        Scope.of(["Jembr"]).check(PROVINCES, [])
    with pytest.raises(ScopeError, match="no province 'Lampong'"):
        Scope.of(province="Lampong").check(PROVINCES, [])


names = st.sampled_from(sorted(PROVINCES))


@given(st.frozensets(names), st.frozensets(names), names)
def test_covering_implies_allowing(mine: frozenset[str], theirs: frozenset[str], one: str) -> None:
    admin, user = Scope(mine), Scope(theirs)
    if admin.covers(user, PROVINCES) and user.allows(one, PROVINCES) and not user.deployment_wide:
        assert admin.allows(one, PROVINCES)

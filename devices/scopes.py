"""Scopes: which regencies a user or an API key may see and act on.

A scope is one of three: one or more regencies, one province (every regency the registry's
``regencies`` section puts in it), or the whole deployment. A :class:`Scope` is a plain value;
what it covers is decided against the registry's regency -> province map, which the caller
passes, so the same scope follows the registry when a regency is added to a province.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from devices.errors import InputError
from devices.stations import Station


class ScopeError(InputError):
    """A scope that cannot be given: both regencies and a province, or names the registry
    does not know."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Some regencies, one province, or (neither) the whole deployment.

    Attributes:
        regencies: The regencies, by name (empty unless the scope is regencies).
        province: The province, by name (None unless the scope is a province).
    """

    regencies: frozenset[str] = frozenset()
    province: str | None = None

    def __post_init__(self) -> None:
        if self.regencies and self.province is not None:
            raise ScopeError("a scope is some regencies or one province, not both")

    @classmethod
    def of(cls, regencies: Iterable[str] = (), province: str | None = None) -> Scope:
        """A scope from the interface's fields (``regencies`` list, ``province``)."""
        return cls(frozenset(regencies), province or None)

    @property
    def deployment_wide(self) -> bool:
        """Whether it covers everything."""
        return not self.regencies and self.province is None

    @property
    def kind(self) -> str:
        """``deployment``, ``province`` or ``regencies``."""
        if self.province is not None:
            return "province"
        return "regencies" if self.regencies else "deployment"

    def reach(self, provinces: Mapping[str, str]) -> frozenset[str] | None:
        """The regencies it covers under ``provinces`` (regency -> province); None: all."""
        if self.province is not None:
            return frozenset(r for r, p in provinces.items() if p == self.province)
        return self.regencies or None

    def allows(self, regency: str, provinces: Mapping[str, str]) -> bool:
        """Whether the regency named ``regency`` is inside the scope."""
        if self.province is not None:
            return provinces.get(regency) == self.province
        return not self.regencies or regency in self.regencies

    def contains(self, station: Station, provinces: Mapping[str, str]) -> bool:
        """Whether ``station`` is inside the scope."""
        return self.allows(station.regency, provinces)

    def covers(self, other: Scope, provinces: Mapping[str, str]) -> bool:
        """Whether everything ``other`` reaches, now and after any registry change, is inside
        this scope (what an admin of this scope may give a user or a key)."""
        if self.deployment_wide:
            return True
        if other.deployment_wide:
            return False
        if other.province is not None:
            return self.province == other.province
        return all(self.allows(r, provinces) for r in other.regencies)

    def check(self, provinces: Mapping[str, str], regencies: Iterable[str]) -> Scope:
        """This scope, when the registry knows every name it gives.

        Args:
            provinces: The registry's regency -> province map.
            regencies: Every regency that has a station (a registry may list none under
                ``regencies``).

        Raises:
            ScopeError: Naming the unknown regency or province.
        """
        known = set(regencies) | set(provinces)
        for name in sorted(self.regencies):
            if name not in known:
                raise ScopeError(f"no regency {name!r} in the registry")
        if self.province is not None and self.province not in set(provinces.values()):
            raise ScopeError(f"no province {self.province!r} in the registry's 'regencies' section")
        return self

    def describe(self) -> str:
        """In words: ``seluruh deployment``, ``provinsi Lampung``, ``Jember, Rembang``."""
        if self.province is not None:
            return f"provinsi {self.province}"
        if self.regencies:
            return ", ".join(sorted(self.regencies))
        return "seluruh deployment"


DEPLOYMENT = Scope()
"""The whole deployment."""

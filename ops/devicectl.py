"""``siaga devices``: edit the device registry and keep the broker's credentials in step.

Every change rewrites ``devices.yaml`` (reviewable in git), the broker's password file (salted
hashes only) and its ACL file, then asks the broker to reload them (SIGHUP) without dropping
other clients. A new or rotated password is returned once, to be printed once, and is never
stored or logged in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices import TopicScheme
from devices.registry import (
    DIRECT_FORMATS,
    Device,
    Integration,
    Registry,
    WorkerAccount,
    load_registry,
    render_devices,
)
from ingest.errors import ConfigError, SiagaError
from ops.brokeradmin import (
    KEY_FILE_MODE,
    BrokerFiles,
    TlsPaths,
    mosquitto_listener_config,
    write_atomically,
)
from ops.credentials import acl_file, generate_password, hash_password
from ops.tls import make_ca, make_server_cert

DEVICES_FILE_MODE = 0o644


class DeviceAdminError(SiagaError):
    """A device command that cannot be carried out; the message says why."""


@dataclass
class DeviceAdmin:
    """The registry files and the broker files, changed together.

    Args:
        stations_file: ``config/stations.yaml`` (read only here).
        devices_file: ``config/devices.yaml`` (rewritten on each change).
        broker: The broker's password, ACL and pid files.
        topics: The native topic scheme (for the ACL).
        shared_group: The workers' shared-subscription group (for the ACL).
    """

    stations_file: Path
    devices_file: Path
    broker: BrokerFiles
    topics: TopicScheme
    shared_group: str | None

    def load(self) -> Registry:
        """The registry as it is on disk."""
        try:
            return load_registry(self.stations_file, self.devices_file)
        except ConfigError as exc:
            raise DeviceAdminError(str(exc)) from None

    def _save(self, registry: Registry, passwords: dict[str, str]) -> bool:
        accounts = registry.accounts()
        passwords = {
            user: hashed
            for user, hashed in passwords.items()
            if user in accounts and not accounts[user].revoked
        }
        acl = acl_file(
            registry,
            topics=self.topics,
            worker_accounts=[w.id for w in registry.workers.values() if not w.revoked],
            shared_group=self.shared_group,
        )
        write_atomically(self.devices_file, render_devices(registry).encode(), DEVICES_FILE_MODE)
        self.broker.write(passwords, acl)
        return self.broker.reload_broker()

    def _change(self, registry: Registry, changes: dict[str, list[object]]) -> Registry:
        try:
            return registry.with_changes(**changes)  # type: ignore[arg-type]
        except ValueError as exc:
            raise DeviceAdminError(str(exc)) from None

    def sync(self) -> bool:
        """Rewrite the broker's files from the registry (after editing devices.yaml by hand)."""
        return self._save(self.load(), self.broker.read_passwords())

    def add_device(self, device: Device) -> str | None:
        """Register a device; returns its new MQTT password for native and SenML devices."""
        registry = self.load()
        if device.id in registry.accounts() or device.id in registry.devices:
            raise DeviceAdminError(f"{device.id!r} exists already")
        registry = self._change(registry, {"devices": [*registry.devices.values(), device]})
        passwords = self.broker.read_passwords()
        password = None
        if device.format in DIRECT_FORMATS:
            password = generate_password()
            passwords[device.id] = hash_password(password)
        self._save(registry, passwords)
        return password

    def add_integration(self, integration: Integration) -> str:
        """Register a network server's account for one application; returns its password."""
        registry = self.load()
        if integration.id in registry.accounts() or integration.id in registry.devices:
            raise DeviceAdminError(f"{integration.id!r} exists already")
        registry = self._change(
            registry, {"integrations": [*registry.integrations.values(), integration]}
        )
        return self._issue(registry, integration.id)

    def add_worker(self, worker_id: str) -> str:
        """Register an ingest worker's account; returns its password."""
        registry = self.load()
        if worker_id in registry.accounts() or worker_id in registry.devices:
            raise DeviceAdminError(f"{worker_id!r} exists already")
        registry = self._change(
            registry, {"workers": [*registry.workers.values(), WorkerAccount(id=worker_id)]}
        )
        return self._issue(registry, worker_id)

    def _issue(self, registry: Registry, user: str) -> str:
        passwords = self.broker.read_passwords()
        password = generate_password()
        passwords[user] = hash_password(password)
        self._save(registry, passwords)
        return password

    def rotate(self, account_id: str) -> str:
        """Issue a new password; the old one stops working when the broker reloads."""
        registry = self.load()
        account = registry.accounts().get(account_id)
        if account is None:
            raise DeviceAdminError(f"{account_id!r} has no MQTT account to rotate")
        if account.revoked:
            raise DeviceAdminError(f"{account_id!r} is revoked; add it again instead")
        return self._issue(registry, account_id)

    def revoke(self, account_id: str) -> None:
        """Revoke a device, integration or worker: credential and ACL gone, history kept."""
        self._edit_account(
            account_id,
            lambda items: [
                item.model_copy(update={"revoked": True}) if item.id == account_id else item
                for item in items
            ],
        )

    def remove(self, account_id: str) -> None:
        """Forget a device, integration or worker entirely."""
        self._edit_account(
            account_id, lambda items: [item for item in items if item.id != account_id]
        )

    def _edit_account(self, account_id: str, edit: Callable[[list[Any]], list[object]]) -> None:
        """Replace the list (devices, integrations or workers) that holds ``account_id`` by
        ``edit`` of it, and save."""
        registry = self.load()
        changes: dict[str, list[object]] = {}
        for key, items in (
            ("devices", registry.devices),
            ("integrations", registry.integrations),
            ("workers", registry.workers),
        ):
            if account_id in items:
                changes[key] = edit(list(items.values()))
        if not changes:
            raise DeviceAdminError(f"no device, integration or worker named {account_id!r}")
        self._save(self._change(registry, changes), self.broker.read_passwords())


def init_tls(
    directory: Path, hostnames: Sequence[str], days: int, files: BrokerFiles, port: int = 8883
) -> tuple[TlsPaths, list[str]]:
    """Make a CA and a server certificate for a test or small deployment.

    Writes ``ca.pem`` (give it to devices), ``ca.key`` (keep it offline: it signs more
    certificates), ``server.pem`` and ``server.key`` into ``directory``.

    Returns:
        The paths, and the mosquitto.conf lines for a TLS listener on ``port`` that uses them
        together with the password and ACL files.
    """
    ca_pem, ca_key = make_ca("Siaga broker CA", days)
    cert_pem, key_pem = make_server_cert(ca_pem, ca_key, hostnames, days)
    tls = TlsPaths(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.write(ca_cert_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem)
    write_atomically(directory / "ca.key", ca_key, KEY_FILE_MODE)
    return tls, mosquitto_listener_config(files, port=port, tls=tls)

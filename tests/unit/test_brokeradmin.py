"""The broker's files on disk: atomic replacement, modes, parsing, the reload signal."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ops.brokeradmin import BrokerFiles, TlsPaths, mosquitto_listener_config, write_atomically
from ops.credentials import hash_password


def files(tmp_path: Path, pid_file: bool = False) -> BrokerFiles:
    return BrokerFiles(
        tmp_path / "broker" / "passwd",
        tmp_path / "broker" / "acl",
        tmp_path / "broker" / "mosquitto.pid" if pid_file else None,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_creates_both_files_with_their_modes_and_reads_back(tmp_path: Path) -> None:
    broker = files(tmp_path)
    hashes = {"gauge-b": hash_password("b"), "gauge-a": hash_password("a")}
    broker.write(hashes, "user gauge-a\ntopic write siaga/a/telemetry\n")
    assert broker.read_passwords() == hashes
    assert list(broker.read_passwords()) == ["gauge-a", "gauge-b"]
    assert broker.acl_file.read_text() == "user gauge-a\ntopic write siaga/a/telemetry\n"
    assert mode(broker.password_file) == 0o600
    assert mode(broker.acl_file) == 0o644
    assert sorted(p.name for p in broker.password_file.parent.iterdir()) == ["acl", "passwd"]


def test_rewriting_replaces_the_file_and_tightens_its_mode(tmp_path: Path) -> None:
    broker = files(tmp_path)
    broker.password_file.parent.mkdir(parents=True)
    broker.password_file.write_text("old:$7$1$a$b\n")
    broker.password_file.chmod(0o666)
    old_inode = broker.password_file.stat().st_ino
    broker.write({"new": "$7$1$c$d"}, "")
    assert broker.password_file.read_text() == "new:$7$1$c$d\n"
    assert mode(broker.password_file) == 0o600
    assert broker.password_file.stat().st_ino != old_inode  # renamed over, not rewritten


def test_a_bad_user_name_writes_nothing(tmp_path: Path) -> None:
    broker = files(tmp_path)
    with pytest.raises(ValueError, match="user name"):
        broker.write({"a:b": "$7$1$a$b"}, "acl")
    assert not broker.acl_file.exists()
    assert not broker.password_file.exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "acl"
    target.write_text("old\n")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_atomically(target, b"new\n", 0o644)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["acl"]


def test_a_missing_password_file_means_no_accounts_yet(tmp_path: Path) -> None:
    assert files(tmp_path).read_passwords() == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [("nocolon\n", "passwd:1: expected user:hash"), ("a:x\n\na:y\n", "passwd:3: user 'a'")],
)
def test_a_malformed_password_file_is_refused_with_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    broker = files(tmp_path)
    broker.password_file.parent.mkdir(parents=True)
    broker.password_file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        broker.read_passwords()


def test_comments_and_blank_lines_in_a_password_file_are_skipped(tmp_path: Path) -> None:
    broker = files(tmp_path)
    broker.password_file.parent.mkdir(parents=True)
    broker.password_file.write_text("# by hand\n\nu:$7$1$a$b\n")
    assert broker.read_passwords() == {"u": "$7$1$a$b"}


def test_no_pid_file_means_no_reload(tmp_path: Path) -> None:
    assert not files(tmp_path).reload_broker()
    broker = files(tmp_path, pid_file=True)
    assert not broker.reload_broker()  # configured but absent: no broker running
    assert broker.pid_file is not None
    broker.pid_file.parent.mkdir(parents=True)
    broker.pid_file.write_text("")
    assert not broker.reload_broker()


def test_a_pid_file_with_garbage_is_refused(tmp_path: Path) -> None:
    broker = files(tmp_path, pid_file=True)
    assert broker.pid_file is not None
    broker.pid_file.parent.mkdir(parents=True)
    broker.pid_file.write_text("mosquitto\n")
    with pytest.raises(ConfigError, match="does not hold a process id"):
        broker.reload_broker()


def test_reload_sends_sighup_to_the_pid_in_the_file(tmp_path: Path) -> None:
    broker = files(tmp_path, pid_file=True)
    assert broker.pid_file is not None
    broker.pid_file.parent.mkdir(parents=True)
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGHUP, lambda *a: sys.exit(42))\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"ready\n"
            broker.pid_file.write_text(f"{child.pid}\n")
            assert broker.reload_broker()
            assert child.wait(10) == 42
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
    assert not broker.reload_broker()  # the process is gone: a stale pid file


def test_listener_config_without_tls(tmp_path: Path) -> None:
    broker = files(tmp_path, pid_file=True)
    assert mosquitto_listener_config(broker) == [
        f"password_file {tmp_path}/broker/passwd",
        f"acl_file {tmp_path}/broker/acl",
        "allow_anonymous false",
        f"pid_file {tmp_path}/broker/mosquitto.pid",
    ]


def test_listener_config_with_tls(tmp_path: Path) -> None:
    tls = TlsPaths(tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    assert mosquitto_listener_config(
        files(tmp_path), port=8883, tls=tls, bind_address="127.0.0.1"
    ) == [
        f"password_file {tmp_path}/broker/passwd",
        f"acl_file {tmp_path}/broker/acl",
        "allow_anonymous false",
        "listener 8883 127.0.0.1",
        f"cafile {tmp_path}/ca.pem",
        f"certfile {tmp_path}/server.pem",
        f"keyfile {tmp_path}/server.key",
        "tls_version tlsv1.2",
    ]
    assert mosquitto_listener_config(files(tmp_path), tls=tls)[3] == "listener 8883"


def test_tls_files_are_written_with_a_private_key(tmp_path: Path) -> None:
    tls = TlsPaths(tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    tls.write(ca_cert_pem=b"CA", cert_pem=b"CERT", key_pem=b"KEY")
    assert (tls.cafile.read_bytes(), tls.certfile.read_bytes(), tls.keyfile.read_bytes()) == (
        b"CA",
        b"CERT",
        b"KEY",
    )
    assert mode(tls.keyfile) == 0o600
    assert mode(tls.certfile) == 0o644


def test_paths_that_would_break_mosquitto_conf_are_refused(tmp_path: Path) -> None:
    broker = BrokerFiles(tmp_path / "pass\nwd", tmp_path / "acl")
    with pytest.raises(ValueError, match=r"mosquitto\.conf"):
        mosquitto_listener_config(broker)

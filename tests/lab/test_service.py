"""The daemons as a service manager sees them, without the lab: sd_notify
readiness, reload and stop notices with STATUS= lines and watchdog pings
(a datagram socket standing in for systemd's), "<N>" priority prefixes when
stderr is the journal's stream, the foreground under a service manager,
--version on every program and the version of meson.build.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_service.py
"""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from dstmd_proc import BUILD, DSTMD, ROOT, Dstmd

PROGRAMS = {"dstmd": "src/dstmd/dstmd", "dstm-tep": "src/tep/dstm-tep",
            "dstm-client": "src/client/dstm-client", "dstmctl": "src/ctl/dstmctl",
            "dots-discover": "src/dots-discover/dots-discover"}


def project_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_version(prog):
    path = os.path.join(BUILD, PROGRAMS[prog])
    if not os.path.exists(path):
        pytest.skip(prog + " is not built")
    for flag in ("--version", "-V"):
        r = subprocess.run([path, flag], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "%s %s\n" % (prog, project_version())


class Notify:
    """The notification socket of a pretend service manager."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.settimeout(0.2)
        self.seen = []

    def wait(self, what, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for i, m in enumerate(self.seen):
                if what in m.split("\n"):
                    del self.seen[:i + 1]
                    return m
            try:
                self.seen.append(self.s.recv(4096).decode())
            except socket.timeout:
                pass
        raise AssertionError("no %s in %r" % (what, self.seen))

    def count(self, what, seconds):
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                n += what in self.s.recv(4096).decode().split("\n")
            except socket.timeout:
                pass
        return n


@pytest.fixture
def tmp(tmp_path):
    os.chmod(tmp_path, 0o755)
    return str(tmp_path)


def test_dstmd_notifies_readiness_reload_watchdog_and_stop(tmp):
    if not os.path.exists(DSTMD):
        pytest.skip("dstmd is not built")
    d = Dstmd(tmp, user="")
    n = Notify(os.path.join(tmp, "notify"))
    err = open(os.path.join(tmp, "stderr"), "wb")
    st = os.fstat(err.fileno())
    env = dict(os.environ, NOTIFY_SOCKET=n.path, WATCHDOG_USEC="400000",
               JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    # No -d: under a service manager dstmd stays in the foreground by itself.
    p = subprocess.Popen([DSTMD, "-c", d.cfg], stdout=err, stderr=err, env=env,
                         stdin=subprocess.DEVNULL)
    try:
        ready = n.wait("READY=1")
        assert any(l.startswith("STATUS=serving") for l in ready.split("\n")), ready
        assert p.poll() is None
        # Pings at half of WATCHDOG_USEC: about five in a second.
        assert n.count("WATCHDOG=1", 1.0) >= 2
        p.send_signal(signal.SIGHUP)
        n.wait("RELOADING=1")
        ready = n.wait("READY=1")
        assert "STATUS=serving; configuration reloaded" in ready.split("\n"), ready
        p.send_signal(signal.SIGTERM)
        n.wait("STOPPING=1")
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    with open(os.path.join(tmp, "stderr"), errors="replace") as f:
        lines = [l for l in f.read().splitlines() if l]
    # journald reads each line's priority; it adds the time itself.
    assert lines and all(re.match(r"<[0-7]>", l) for l in lines), lines
    assert "<6>configuration reloaded: lifetime 600s, quarantine 60s, 1 TEP(s)" in lines


def test_dstmd_without_a_service_manager_sends_nothing_and_logs_with_time(tmp):
    if not os.path.exists(DSTMD):
        pytest.skip("dstmd is not built")
    d = Dstmd(tmp, user="")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")}
    log = open(os.path.join(tmp, "log"), "wb")
    p = subprocess.Popen([DSTMD, "-d", "-v", "-c", d.cfg], stdout=log, stderr=log, env=env,
                         stdin=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while "dstmd started" not in open(os.path.join(tmp, "log")).read():
            assert p.poll() is None and time.monotonic() < end
            time.sleep(0.05)
        p.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
    text = open(os.path.join(tmp, "log")).read()
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} dstmd: configuration reloaded", text, re.M), text


@pytest.mark.parametrize("flags,traced", [("-v", False), ("-vv", True)])
def test_vv_traces_each_control_request(tmp, flags, traced):
    if not os.path.exists(DSTMD):
        pytest.skip("dstmd is not built")
    from dstmd_proc import DSTMCTL
    d = Dstmd(tmp, user="")
    log = open(os.path.join(tmp, "log"), "wb")
    p = subprocess.Popen([DSTMD, "-d", flags, "-c", d.cfg], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while subprocess.run([DSTMCTL, "-s", d.sock, "pools"], capture_output=True,
                             timeout=10).returncode != 0:
            assert p.poll() is None and time.monotonic() < end
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
    text = open(os.path.join(tmp, "log")).read()
    assert ("dstmd: control: pools" in text) == traced, text
    assert "dstmd started" in text

"""The lease store as an operator meets it, on a loopback dstmd: one dstmd
per database (a second one refuses to start and names the first), the
history of leases (who held an address when), the paged and filtered
lease listing, and a full disk: a tmpfs under the database filled up gets
error replies (TSP 530), dstmd stays up and says so, and serves again by
itself once there is room, with no acknowledged lease lost and none held
twice, also across a kill -9."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from dstmd_proc import DSTMCTL, DSTMD, Dstmd
from test_dstmd import Tsp, addr_of

pytestmark = pytest.mark.skipif(not os.path.exists(DSTMD), reason="dstmd is not built")


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="dstmd-store-") as d:
        yield d


def dstmctl(d, *args):
    return subprocess.run([DSTMCTL, "-s", d.sock] + list(args), capture_output=True,
                          text=True, timeout=30)


def test_second_dstmd_on_one_database_refuses_to_start(tmp):
    first = Dstmd(tmp).start()
    try:
        other = os.path.join(tmp, "second")
        os.mkdir(other)
        second = Dstmd(other, database=first.db)
        r = subprocess.run([DSTMD, "-d", "-c", second.cfg], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0
        assert "pid %d" % first.proc.pid in r.stderr, r.stderr
        assert first.db + ".lock" in r.stderr, r.stderr
        assert first.proc.poll() is None
        # The first one still serves.
        assert Tsp(first.port).create("fd00:d57::21")[0] == 200
    finally:
        first.kill()
    # Once it is gone (whatever way), the lock is free.
    second = Dstmd(other, database=first.db).start()
    second.kill()


def test_history_of_a_released_lease(tmp):
    d = Dstmd(tmp).start()
    try:
        a = Tsp(d.port)
        st, xml = a.create("fd00:d57::31")
        assert st == 200
        v4 = addr_of(xml)
        assert a.create("fd00:d57::31", v4)[0] == 200  # renewal
        assert a.create("fd00:d57::31", v4, action="delete")[0] == 200  # release
        during = int(time.time())
        st, xml = Tsp(d.port).create("fd00:d57::32")
        assert st == 200 and addr_of(xml) != v4
        d.ctl("revoke", addr_of(xml))
        events = d.ctl("history", v4)
        assert [e["event"] for e in events] == ["grant", "renew", "release"]
        assert {e["identity"] for e in events} == {"anon:fd00:d57::31"}
        assert {e["ipv6"] for e in events} == {"fd00:d57::31"}
        # Who held it at that moment; nobody long before.
        at = d.ctl("history", v4, "--at", "@%d" % during)
        assert at and at[0]["identity"] == "anon:fd00:d57::31"
        assert d.ctl("history", v4, "--at", "2001-01-01T00:00:00Z") == []
        # By client: the revoked lease of the other one.
        other = d.ctl("history", "--client", "anon:fd00:d57::32")
        assert [e["event"] for e in other] == ["grant", "revoke"]
        # The table form, and strict arguments.
        r = dstmctl(d, "history", v4)
        assert r.returncode == 0 and "release" in r.stdout and "fd00:d57::31" in r.stdout
        assert dstmctl(d, "history").returncode == 2
        assert dstmctl(d, "history", v4, "--at", "yesterday").returncode == 2
        # It is on disk: a restart still answers.
        d.kill()
        d.start()
        assert [e["event"] for e in d.ctl("history", v4)] == ["grant", "renew", "release"]
    finally:
        d.kill()


def test_leases_paged_and_filtered(tmp):
    d = Dstmd(tmp).start()
    try:
        got = []
        for i in range(30):
            st, xml = Tsp(d.port).create("fd00:d57::1:%x" % i)
            assert st == 200
            got.append(addr_of(xml))
        d.ctl("revoke", got[3])
        every = d.ctl("leases")
        assert len(every) == 29 and got[3] not in [l["ipv4"] for l in every]
        assert len(d.ctl("leases", "--all")) == 30
        assert [l["ipv4"] for l in d.ctl("leases", "--state", "quarantine")] == [got[3]]
        assert len(d.ctl("leases", "--limit", "7")) == 7
        mine = d.ctl("leases", "--client", "anon:fd00:d57::1:5")
        assert [l["ipv4"] for l in mine] == [got[5]]
        # --after: the listing goes on after that address, in address order.
        first = d.ctl("leases", "--limit", "10")
        rest = d.ctl("leases", "--after", first[-1]["ipv4"])
        assert [l["ipv4"] for l in first + rest] == [l["ipv4"] for l in every]
        assert d.ctl("leases", "--pool", "t", "--limit", "1")
        r = dstmctl(d, "leases", "--pool", "nope")
        assert r.returncode == 1 and "nope" in r.stderr
        assert dstmctl(d, "leases", "--bogus").returncode == 2
        assert dstmctl(d, "leases", "stray").returncode == 2
        # The daemon's side: unknown arguments are refused, pages carry a cursor.
        page = raw(d, "leases", limit=5)
        assert page["ok"] and len(page["result"]["leases"]) == 5
        assert isinstance(page["result"]["next"], int)
        page = raw(d, "leases", cursor=page["result"]["next"], limit=100)
        assert len(page["result"]["leases"]) == 24 and page["result"]["next"] is None
        bad = raw(d, "leases", colour="blue")
        assert not bad["ok"] and "colour" in bad["error"]
    finally:
        d.kill()


def raw(d, command, **args):
    """One request on the control socket, the reply as it came."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(d.sock)
    s.sendall(json.dumps({"version": 1, "command": command, "args": args}).encode() + b"\n")
    f = s.makefile("rb")
    reply = json.loads(f.readline())
    s.close()
    return reply


def fill(path):
    """Fill the file system of `path` up, return the filler's name."""
    name = os.path.join(path, "filler")
    fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return name


def load(d, n, prefix):
    """n TSP allocations for clients PREFIX::1..n: {status: count}."""
    statuses = {}
    for i in range(1, n + 1):
        st = Tsp(d.port).create("%s%x" % (prefix, i))[0]
        statuses[st] = statuses.get(st, 0) + 1
    return statuses


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_refuses_then_recovers(tmp):
    mnt = os.path.join(tmp, "small")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], check=True)
    d = None
    try:
        d = Dstmd(tmp, database=os.path.join(mnt, "leases.db"), quarantine=1,
                  pools=[{"name": "t", "prefixes": ["10.1.0.0/16"]}]).start()
        assert load(d, 51, "fd00:d57::2:") == {200: 51}
        # A quarantine that ends while the store fails: nothing may spin on it.
        d.ctl("revoke", d.ctl("leases", "--limit", "1")[0]["ipv4"])
        filler = fill(mnt)
        t_full = time.time()
        # Until the WAL needs room no commit fails; then every request is refused.
        statuses = load(d, 400, "fd00:d57::3:")
        assert statuses.get(530, 0) > 0, statuses
        assert set(statuses) <= {200, 530}, statuses
        ok_while_full = statuses.get(200, 0)
        assert d.proc.poll() is None
        st = d.ctl("status")
        assert st["store"].startswith("failing"), st
        c = d.counters()
        assert c["store_failing"] == 1 and c["store_failures"] >= 1
        # Idle while failing: a probe a second, no busy loop; at most a line a second.
        cpu = d.cpu_seconds()
        time.sleep(3)
        assert d.cpu_seconds() - cpu < 1.0
        assert d.logtext().count("cannot commit leases") <= time.time() - t_full + 2
        # Room again: dstmd notices by itself within seconds.
        os.unlink(filler)
        deadline = time.time() + 20
        while d.ctl("status")["store"] != "ok":
            assert time.time() < deadline, d.logtext()
            time.sleep(0.2)
        assert load(d, 20, "fd00:d57::4:") == {200: 20}
        leases = d.ctl("leases")
        assert len(leases) == 50 + ok_while_full + 20
        assert len({l["ipv4"] for l in leases}) == len(leases)
        assert d.counters()["store_failing"] == 0
        # What was acknowledged is on disk: kill -9 and restart.
        d.kill(signal.SIGKILL)
        d.start()
        again = d.ctl("leases")
        assert sorted(l["ipv4"] for l in again) == sorted(l["ipv4"] for l in leases)
    finally:
        if d:
            d.kill()
        subprocess.run(["umount", "-l", mnt])


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and a tmpfs need root")
def test_full_disk_dhcpv6_gets_noaddrsavail(tmp):
    """DHCPv6 over a veth between two namespaces (scapy builds the client's
    messages, as in test_dhcp6.py): Solicit + Rapid Commit while the disk
    is full gets a Reply with NoAddrsAvail and the store's message, and a
    lease again once there is room."""
    d6 = pytest.importorskip("test_dhcp6")
    tag = "d6full-%d" % os.getpid()
    ns_s, ns_c = tag + "-s", tag + "-c"
    vs, vc = "d6fs%d" % (os.getpid() % 10000), "d6fc%d" % (os.getpid() % 10000)
    mnt = os.path.join(tmp, "small")
    os.mkdir(mnt)
    proc = None
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], check=True)
        d6.sh("ip", "netns", "add", ns_s)
        d6.sh("ip", "netns", "add", ns_c)
        d6.sh("ip", "link", "add", vs, "netns", ns_s, "type", "veth", "peer", vc, "netns", ns_c)
        for ns, dev, a in ((ns_s, vs, d6.SRV6), (ns_c, vc, d6.CLI6)):
            d6.sh("ip", "-n", ns, "link", "set", "lo", "up")
            d6.sh("ip", "-n", ns, "addr", "add", a + "/64", "dev", dev, "nodad")
            d6.sh("ip", "-n", ns, "link", "set", dev, "up")
        sock = os.path.join(tmp, "control.sock")
        cfg = {"database": os.path.join(mnt, "leases.db"), "control": sock, "user": "",
               "lifetime": 120, "quarantine": 10,
               "listen": [{"address": "[%s]:3653" % d6.SRV6}],
               "pools": [{"name": "lab", "prefixes": ["10.2.0.0/16"]}],
               "teps": [{"name": "tep1", "ipv6": d6.TEP6, "ipv4": "198.51.100.1",
                         "clients": ["fd00:d6::/32"]}],
               "dhcpv6": {"interfaces": [vs], "limits": {"per_duid": 4, "per_64": 60000}}}
        path = os.path.join(tmp, "d6.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(tmp, "d6.log"), "w")
        proc = subprocess.Popen(["ip", "netns", "exec", ns_s, DSTMD, "-d", "-c", path],
                                stdout=log, stderr=log)
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        cli = d6.Client(ns_c, vc)

        def solicit(i):
            duid = b"\0\3\0\1\2\0" + i.to_bytes(4, "big")
            return cli.xchg(d6.DHCP6_Solicit, cli.clientid(duid), d6.DHCP6OptRapidCommit(),
                            d6.ia_dstm(1))

        rep = solicit(1)
        assert rep and rep["type"] == 7 and rep["ias"][0]["v4"], rep
        filler = fill(mnt)
        refused = None
        for i in range(2, 3000):
            rep = solicit(i)
            assert rep is not None, "no reply"
            if rep["ias"][0]["v4"] is None:
                refused = rep
                break
        assert refused, "the disk never filled up"
        assert refused["status"] == 2 and refused["ias"][0]["status"] == 2  # NoAddrsAvail
        assert b"lease store cannot commit" in refused["raw"]
        assert proc.poll() is None
        # Refused at once while it lasts, with the same status.
        rep = solicit(5000)
        assert rep and rep["ias"][0]["v4"] is None and rep["ias"][0]["status"] == 2
        os.unlink(filler)
        deadline = time.time() + 20
        while True:
            rep = solicit(6000)
            if rep and rep["ias"][0]["v4"]:
                break
            assert time.time() < deadline, open(os.path.join(tmp, "d6.log")).read()
            time.sleep(0.5)
        assert proc.poll() is None
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["ip", "netns", "del", ns_s], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_c], capture_output=True)
        subprocess.run(["umount", "-l", mnt])

"""Several dstmd instances on one PostgreSQL database (store_pg.c), on
loopback with a private PostgreSQL cluster in a temporary directory
(scripts/pg-cluster): two instances allocating concurrently from both
sides hand out no address twice; one killed with -9 under load loses no
acknowledged lease, and its clients renew at the other (a TSP client
reconnects there and keeps its address); PostgreSQL restarted under a
serving dstmd: allocations are refused meanwhile (530, never a faked 200)
and served again once it is back. Also the lab with `--store postgresql
--servers 2`: clients of srv and of srv2 bound, no address twice; srv2
killed with -9, its TSP client started again toward srv keeps its
address; over DHCPv6, srv killed with -9, the clients renew at srv2."""

import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from dstmd_proc import DSTMD, ROOT, Dstmd
from test_dstmd import Tsp, addr_of

PG_CLUSTER = os.path.join(ROOT, "scripts", "pg-cluster")
PGBINS = [d for d in ("/usr/lib/postgresql/%s/bin/postgres" % v for v in range(12, 30))
          if os.path.exists(d)]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(DSTMD), reason="dstmd is not built"),
    pytest.mark.skipif(not PGBINS, reason="no PostgreSQL binaries (Debian package postgresql)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private PostgreSQL cluster needs root"),
]


class Pg:
    def __init__(self, d):
        self.dir = d
        self.conninfo = "host=%s port=5432 user=postgres dbname=postgres connect_timeout=3" % d

    def run(self, cmd):
        subprocess.run([PG_CLUSTER, cmd, self.dir], check=True, timeout=120)

    def sql(self, query):
        r = subprocess.run(["psql", "-qAt", "-F", "|", self.conninfo, "-c", query],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return [line.split("|") for line in r.stdout.splitlines() if line]


@pytest.fixture
def pg():
    with tempfile.TemporaryDirectory(prefix="dstm-pg-") as d:
        p = Pg(d)
        p.run("start")
        try:
            yield p
        finally:
            p.run("stop")


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="dstmd-scale-") as d:
        yield d


def instance(tmp, name, pg):
    d = os.path.join(tmp, name)
    os.mkdir(d)
    return Dstmd(d, store={"postgresql": pg.conninfo}).start()


def client_v6(side, i):
    # One /64 each: dstmd's per-/64 quota is not what these tests are about.
    return "fd00:d57:%x:%x::1" % (side + 1, i + 1)


def ask(port, v6, acked, refused, attempts=60):
    """A TSP client that asks until it gets an address (530 while the
    instances sort a conflict out is normal: a client asks again)."""
    for _ in range(attempts):
        try:
            t = Tsp(port, timeout=10)
            # None: the connection closed under the request (an instance killed).
            status, xml = t.create(v6) or (None, "")
            t.close()
        except OSError:
            status, xml = None, ""
        if status == 200:
            acked[v6] = addr_of(xml)
            return
        refused.append(status)
        time.sleep(0.2)


def active_rows(pg):
    rows = pg.sql("SELECT identity, v4, port_lo FROM lease WHERE state = 'active'")
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def v4_int(a):
    p = [int(x) for x in a.split(".")]
    return p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]


def run_clients(jobs):
    threads = [threading.Thread(target=ask, args=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)


def check_acked_in_db(pg, acked):
    """Every acknowledged lease is committed, with the address the client was told, once."""
    rows = active_rows(pg)
    for v6, a in acked.items():
        assert rows.get("anon:" + v6, (None,))[0] == v4_int(a), (v6, a, rows.get("anon:" + v6))
    held = [r[0] for r in rows.values()]
    assert len(held) == len(set(held)), "an address held twice in the database"
    told = list(acked.values())
    assert len(told) == len(set(told)), "an address handed to two clients"


def test_two_instances_allocate_concurrently(pg, tmp):
    a = instance(tmp, "a", pg)
    b = instance(tmp, "b", pg)
    try:
        acked, refused = {}, []
        jobs = [(d.port, client_v6(side, i), acked, refused)
                for i in range(30) for side, d in enumerate((a, b))]
        run_clients(jobs)
        assert len(acked) == 60, (len(acked), refused[:10], a.logtext(), b.logtext())
        print("refused", len(refused), [(x.counters().get("store_syncs"), x.counters().get("store_failures")) for x in (a, b)])
        check_acked_in_db(pg, acked)
        # Contested: pairs of clients, one at each instance, ask for the same
        # address at once; the database lets one of each pair have it.
        taken = set(acked.values())
        want = [a4 for a4 in ("192.0.2.%d" % i for i in range(2, 255)) if a4 not in taken][:10]
        got, statuses = {}, []

        def contest(port, v6, v4):
            # 530: the batch lost to the other instance's commit; ask again,
            # until served or told the address is someone else's.
            for _ in range(50):
                t = Tsp(port, timeout=10)
                r = t.create(v6, v4=v4) or (None, "")
                t.close()
                if r[0] == 200:
                    got[v6] = addr_of(r[1])
                    return
                if r[0] != 530:
                    break
                time.sleep(0.1)
            statuses.append(r[0])

        threads = [threading.Thread(target=contest, args=(d.port, client_v6(2 + side, i), v4))
                   for i, v4 in enumerate(want) for side, d in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        told = list(got.values())
        assert len(told) == len(set(told)), got
        rows = active_rows(pg)
        held = [r[0] for r in rows.values()]
        assert len(held) == len(set(held))
        for v6, addr in got.items():
            assert rows["anon:" + v6][0] == v4_int(addr)
        # Free addresses, asked for: the database decides, and someone gets each.
        assert len(got) == len(want), statuses
        acked.update(got)
        check_acked_in_db(pg, acked)
        print("contested: %d of %d pairs served one side; the others: %s"
              % (len(got), len(want), statuses))
        # Each learns the other's leases: a client of a renews at b, same address.
        v6 = client_v6(0, 0)
        again = {}
        ask(b.port, v6, again, [])
        assert again[v6] == acked[v6]
        assert a.proc.poll() is None and b.proc.poll() is None
    finally:
        a.kill()
        b.kill()


def test_kill9_one_instance_under_load(pg, tmp):
    a = instance(tmp, "a", pg)
    b = instance(tmp, "b", pg)
    try:
        acked, refused = {}, []
        jobs = [(d.port, client_v6(side, i), acked, refused, 5)
                for i in range(25) for side, d in enumerate((a, b))]
        threads = [threading.Thread(target=ask, args=j) for j in jobs]
        for t in threads:
            t.start()
        # Killed in the middle: some clients served, others still asking.
        deadline = time.time() + 60
        while len(acked) < 10 and time.time() < deadline:
            time.sleep(0.01)
        a.kill(signal.SIGKILL)
        print("acknowledged before the kill:", len(acked))
        for t in threads:
            t.join(timeout=300)
        assert a.proc.poll() is not None
        check_acked_in_db(pg, acked)
        # The clients of the dead instance reconnect to the other one: the
        # ones a acknowledged keep their address, the others get one now.
        moved, refused2 = {}, []
        run_clients([(b.port, client_v6(0, i), moved, refused2) for i in range(25)])
        assert len(moved) == 25, refused2[:10]
        for v6, addr in acked.items():
            if v6 in moved:
                assert moved[v6] == addr, (v6, addr, moved[v6])
        acked.update(moved)
        check_acked_in_db(pg, acked)
        assert b.proc.poll() is None
        # The survivor runs expiry now (a's advisory lock went with its connection).
        deadline = time.time() + 20
        while time.time() < deadline and not b.counters().get("store_expiry_owner"):
            time.sleep(0.2)
        assert b.counters().get("store_expiry_owner") is True
    finally:
        a.kill()
        b.kill()


def test_postgresql_restarted(pg, tmp):
    d = instance(tmp, "a", pg)
    try:
        acked, refused = {}, []
        ask(d.port, client_v6(0, 0), acked, refused)
        assert client_v6(0, 0) in acked
        pg.run("stop")
        try:
            # Refused while the database is away: never an address it did not commit.
            for i in range(3):
                t = Tsp(d.port, timeout=15)
                status, _ = t.create(client_v6(1, i))
                t.close()
                assert status != 200, status
            st = d.counters()
            assert st.get("store_failing") == 1, st
        finally:
            pg.run("start")
        # Back: dstmd reconnects by itself (a probe a second) and serves again.
        later = {}
        ask(d.port, client_v6(1, 0), later, [], attempts=150)
        assert client_v6(1, 0) in later
        assert d.counters().get("store_failing") == 0
        acked.update(later)
        check_acked_in_db(pg, acked)
        # What was refused during the outage is nowhere.
        rows = active_rows(pg)
        assert "anon:" + client_v6(1, 1) not in rows
        assert d.proc.poll() is None
    finally:
        d.kill()


@pytest.fixture(scope="module")
def lab2():
    from lab import domain
    yield from domain(clients=4, store="postgresql", servers=2)


def test_lab_two_servers_on_postgresql(lab2):
    """The lab's srv and srv2 share the pool on node db: the odd clients bound
    by srv, the even ones by srv2, no address twice, both instances know
    every lease, and traffic flows through the TEP."""
    addrs = {}
    for c in lab2.client_nodes:
        out = lab2.exec(c, "ip", "-4", "-o", "addr", "show", "dev", "dstm0", check=True)
        addrs[c] = out.stdout.split("inet ")[1].split("/")[0]
    assert len(set(addrs.values())) == len(addrs), addrs
    for srv in ("srv", "srv2"):
        deadline = time.time() + 20
        while True:
            known = {e["ipv4"] for e in lab2.ctl(srv, "leases")}
            if known >= set(addrs.values()) or time.time() > deadline:
                break
            time.sleep(0.2)
        assert known >= set(addrs.values()), (srv, known, addrs)
    for c in ("c1", "c2"):
        r = lab2.exec(c, "curl", "-sf", "-m", "10", "-o", "/dev/null", "http://198.51.100.2/")
        assert r.returncode == 0, (c, r.stderr)


def test_lab_srv2_killed_its_client_renews_at_srv(lab2):
    """kill -9 srv2: c2 (a client of srv2) keeps its tunnel; started again
    naming srv (dstm-client names one server: the operator's move, or a
    service address that moved), it renews there and keeps its address,
    and traffic flows; srv's clients never noticed."""
    from test_domain import bound, dti_addresses, kill_node, start_node

    before = {c: dti_addresses(lab2, c)[0] for c in ("c1", "c2")}
    kill_node(lab2, "srv2", signal.SIGKILL)
    kill_node(lab2, "c2", signal.SIGKILL)
    conf = lab2.config("c2")
    conf["server"] = "[fd00:d57::1]:3653"
    start_node(lab2, "c2", "dstm-client", lab2.write_config("c2", "to-srv.json", conf))
    s = bound(lab2, "c2", timeout=30)
    assert s["ipv4"] == before["c2"], (s, before)
    assert dti_addresses(lab2, "c1")[0] == before["c1"]
    for c in ("c1", "c2"):
        r = lab2.exec(c, "curl", "-sf", "-m", "10", "-o", "/dev/null", "http://198.51.100.2/")
        assert r.returncode == 0, (c, r.stderr)
    leases = {e["ipv4"]: e for e in lab2.ctl("srv", "leases")}
    assert leases[before["c2"]]["identity"] == "anon:fd00:d57::12"


@pytest.fixture(scope="module")
def lab2_dhcp():
    from lab import domain
    yield from domain(access="dhcpv6", clients=2, store="postgresql", servers=2, lifetime=30)


def test_lab_dhcpv6_srv_killed_clients_renew_at_srv2(lab2_dhcp):
    """DHCPv6 with srv and srv2 on one database: kill -9 srv; past T1 and
    T2 of a 30 s lease every client is still bound with its address, its
    lease renewed at srv2 (Renew or Rebind: whichever reaches a server),
    srv2 runs expiry now, and traffic flows."""
    from test_domain import bound, dti_addresses, kill_node

    lab = lab2_dhcp
    before = {c: dti_addresses(lab, c)[0] for c in lab.client_nodes}
    kill_node(lab, "srv", signal.SIGKILL)
    renewed0 = lab.ctl("srv2", "counters").get("lease_renewals", 0)
    time.sleep(40)  # past the first lease's expiry: only renewals at srv2 keep them
    for c in lab.client_nodes:
        s = bound(lab, c, timeout=20)
        assert s["ipv4"] == before[c], (c, s, before)
    leases = {e["ipv4"]: e for e in lab.ctl("srv2", "leases")}
    for c, a in before.items():
        assert leases[a]["state"] == "active", leases[a]
        assert leases[a]["expires_in"] > 0
    n = lab.ctl("srv2", "counters")
    assert n.get("lease_renewals", 0) > renewed0
    assert n.get("store_expiry_owner") is True
    r = lab.exec("c1", "curl", "-sf", "-m", "10", "-o", "/dev/null", "http://198.51.100.2/")
    assert r.returncode == 0, r.stderr

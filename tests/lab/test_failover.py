"""TEP failover (dstmd's failover.c; `scripts/lab up --teps 2`): tep names
tep2 as its backup. dstm-tep on tep killed with -9: dstmd moves tep's
leases to tep2 (committed: they stay there across a restart of dstmd),
pushes their bindings to tep2 and sends each TSP client a delete, the
client acquires again and gets tep2's address, and tep2 answers ARP
toward v4 for the addresses it now holds (scripts/lab-announce), so HTTP
from c1 to v4 works again. The time from the kill to the first answer is
measured and printed; the bound asserted is generous (a loaded 2-core
machine). The same with two dstmd on PostgreSQL and over DHCPv6
(Reconfigure); tep's links cut instead of a kill (the control session's
keepalive notices); and `dstmd -n` on a bad "backup"."""

import json
import os
import signal
import subprocess
import time

import pytest

from lab import domain
from test_domain import kill_node, start_node, wait_for

V4_URL = "http://198.51.100.2/"
TEP2_V6 = "fd00:d57::4"
RESUME_BOUND = 15.0  # seconds; failover_after is 2 in the lab


@pytest.fixture(scope="module")
def lab():
    yield from domain(teps=2, clients=2)


def http_ok(lab, node, timeout=2):
    r = lab.exec(node, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                 "--max-time", str(timeout), V4_URL, timeout=timeout + 10)
    return r.returncode == 0 and r.stdout.strip() == "200"


def tep_status(lab, srv="srv"):
    return {t["name"]: t for t in lab.ctl(srv, "teps")}


def leases(lab, srv="srv"):
    rows = lab.ctl(srv, "leases")
    rows = rows["leases"] if isinstance(rows, dict) else rows
    return {row["identity"]: row for row in rows}


def test_config_backup_checked(lab, tmp_path):
    dstmd = os.path.join(lab.build, "src/dstmd/dstmd")
    conf = lab.config("srv")
    for backup, why in (("nope", 'no TEP is named "nope"'),
                        ("tep", "a TEP cannot be its own backup")):
        conf["teps"][0]["backup"] = backup
        path = tmp_path / "srv.json"
        path.write_text(json.dumps(conf, indent=1))
        r = subprocess.run([dstmd, "-n", "-c", str(path)], capture_output=True, text=True)
        assert r.returncode != 0
        assert "%s:" % path in r.stderr and "/teps/0/backup: " + why in r.stderr, r.stderr
    conf["teps"][0]["backup"] = "tep2"
    del conf["teps"][1]["control"]
    path.write_text(json.dumps(conf, indent=1))
    r = subprocess.run([dstmd, "-n", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode != 0 and "failover needs a \"control\" endpoint" in r.stderr, r.stderr


def test_kill9_tep_traffic_resumes_through_tep2(lab):
    before = leases(lab)
    assert {row["tep"] for row in before.values()} == {"tep"}, before
    teps = tep_status(lab)
    assert teps["tep"]["backup"] == "tep2" and teps["tep"]["failed_over"] is False
    assert teps["tep2"]["state"] == "up"
    assert http_ok(lab, "c1")

    kill_node(lab, "tep", signal.SIGKILL)
    t0 = time.monotonic()
    while not http_ok(lab, "c1", timeout=1):
        assert time.monotonic() - t0 < RESUME_BOUND + 30, "traffic never resumed"
        time.sleep(0.1)
    took = time.monotonic() - t0
    print("traffic from c1 to v4 resumed through tep2 %.2f s after kill -9 of tep "
          "(failover_after 2 s)" % took)
    assert took < RESUME_BOUND, "resumed after %.1f s" % took

    # The counters show the move; the leases (same addresses) are on tep2.
    teps = tep_status(lab)
    assert teps["tep"]["state"] == "down" and teps["tep"]["failed_over"] is True
    assert teps["tep"]["failovers"] == 1 and teps["tep"]["moved"] == len(before)
    assert teps["tep2"]["ok"] >= len(before)
    after = leases(lab)
    for ident, row in before.items():
        assert after[ident]["tep"] == "tep2" and after[ident]["ipv4"] == row["ipv4"], after
    for node in ("c1", "c2"):
        wait_for(lambda: lab.ctl(node, "status").get("tep_ipv6") == TEP2_V6, 15,
                 node + " on tep2")
        assert http_ok(lab, node)
    assert "failing over to tep2" in lab.log("srv")
    metrics = lab.exec("srv", "curl", "-s", "--max-time", "5",
                       "http://[fd00:d57::1]:9653/metrics", check=True).stdout
    assert 'dstmd_tep_failed_over{tep="tep"} 1' in metrics, metrics
    assert 'dstmd_tep_moved_total{tep="tep"} %d' % len(before) in metrics


def test_move_survives_a_restart_of_dstmd(lab):
    """After the test above: the leases' TEP was committed."""
    kill_node(lab, "srv", signal.SIGTERM)
    start_node(lab, "srv", "dstmd")
    rows = leases(lab)
    assert rows and {row["tep"] for row in rows.values()} == {"tep2"}, rows
    wait_for(lambda: tep_status(lab)["tep2"]["state"] == "up", 10, "tep2 link")
    assert http_ok(lab, "c1", timeout=5)


@pytest.fixture
def lab_pg():
    """--store postgresql --servers 2 --teps 2: c1 is srv's client, c2 srv2's."""
    from lab import Lab

    if not any(os.path.exists("/usr/lib/postgresql/%d/bin/postgres" % v) for v in range(12, 30)):
        pytest.skip("no PostgreSQL binaries (Debian package postgresql)")
    lab = Lab(name="t%dp" % os.getpid())
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(teps=2, clients=2, store="postgresql", servers=2)
        yield lab
    finally:
        lab.down()


def test_kill9_tep_two_servers_on_postgresql(lab_pg):
    """Both instances watch tep; whichever moves a lease, the instance that
    holds the client's session tells it: c2 (srv2's) moves as c1 (srv's) does."""
    lab = lab_pg
    assert http_ok(lab, "c1") and http_ok(lab, "c2")
    kill_node(lab, "tep", signal.SIGKILL)
    t0 = time.monotonic()
    while not (http_ok(lab, "c1", timeout=1) and http_ok(lab, "c2", timeout=1)):
        assert time.monotonic() - t0 < RESUME_BOUND + 30, "traffic never resumed"
        time.sleep(0.1)
    took = time.monotonic() - t0
    print("two servers: traffic from c1 and c2 resumed through tep2 %.2f s after kill -9 "
          "of tep" % took)
    assert took < RESUME_BOUND, "resumed after %.1f s" % took
    for srv in ("srv", "srv2"):
        rows = leases(lab, srv)
        assert len(rows) == 2 and {row["tep"] for row in rows.values()} == {"tep2"}, rows
        assert tep_status(lab, srv)["tep"]["failed_over"] is True
    moved = sum(lab.ctl(s, "teps")[0]["moved"] for s in ("srv", "srv2"))
    assert moved >= 2


@pytest.fixture
def lab_v():
    from lab import Lab

    lab = Lab(name="t%dv" % os.getpid())
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(teps=2, clients=1)
        yield lab
    finally:
        lab.down()


def test_tep_host_vanishes(lab_v):
    """tep's links go down (its host gone: no FIN, no RST): dstmd's TCP
    keepalive on the control session (3 probes 1 s apart) notices it, and
    the failover follows as after a kill."""
    lab = lab_v
    assert http_ok(lab, "c1")
    for dev in ("eth0", "v4"):
        subprocess.run(["ip", "-n", lab.netns("tep"), "link", "set", dev, "down"], check=True)
    t0 = time.monotonic()
    wait_for(lambda: tep_status(lab)["tep"]["state"] == "down", 20, "the link to tep down")
    noticed = time.monotonic() - t0
    while not http_ok(lab, "c1", timeout=1):
        assert time.monotonic() - t0 < RESUME_BOUND + 30, "traffic never resumed"
        time.sleep(0.1)
    took = time.monotonic() - t0
    print("tep vanished: dstmd noticed after %.2f s, traffic resumed through tep2 after "
          "%.2f s" % (noticed, took))
    assert noticed < 10 and took < RESUME_BOUND + 5
    assert tep_status(lab)["tep"]["failed_over"] is True
    assert leases(lab)["anon:fd00:d57::11"]["tep"] == "tep2"


@pytest.fixture
def lab_d():
    from lab import Lab

    lab = Lab(name="t%dd" % os.getpid())
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(teps=2, clients=2, access="dhcpv6")
        yield lab
    finally:
        lab.down()


def test_kill9_tep_dhcpv6_clients_reconfigured(lab_d):
    """Over DHCPv6 the clients are sent a Reconfigure, renew, and are given tep2."""
    lab = lab_d
    assert http_ok(lab, "c1") and http_ok(lab, "c2")
    sent = lab.ctl("srv", "counters").get("dhcp6_reconfigure_sent", 0)
    kill_node(lab, "tep", signal.SIGKILL)
    t0 = time.monotonic()
    while not (http_ok(lab, "c1", timeout=1) and http_ok(lab, "c2", timeout=1)):
        assert time.monotonic() - t0 < RESUME_BOUND + 30, "traffic never resumed"
        time.sleep(0.1)
    took = time.monotonic() - t0
    print("DHCPv6: traffic from c1 and c2 resumed through tep2 %.2f s after kill -9 of tep"
          % took)
    assert took < RESUME_BOUND, "resumed after %.1f s" % took
    assert lab.ctl("srv", "counters")["dhcp6_reconfigure_sent"] >= sent + 2
    for node in ("c1", "c2"):
        wait_for(lambda: lab.ctl(node, "status").get("tep_ipv6") == TEP2_V6, 15,
                 node + " on tep2")
    assert {row["tep"] for row in leases(lab).values()} == {"tep2"}

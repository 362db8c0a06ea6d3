"""Fairness under attack (DESIGN §4): a host `x` on another /64 floods dstmd
with 10,000 bare Solicits from fresh DUIDs, then holds 10,000 idle TSP
sessions; in both cases a legitimate client gets its lease within 2 s, the
attacker holds no more than its /64's share of the pool, and the counters
show the offers, evictions and limits at work.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_fairness.py
"""

import os
import resource
import signal
import socket
import struct
import threading
import time

import pytest

pytest.importorskip("scapy.layers.dhcp6")
from scapy.layers.dhcp6 import DHCP6_Solicit, DHCP6OptElapsedTime, DHCP6OptRapidCommit  # noqa

from lab import SRV6, Lab, client_ipv6  # noqa: E402
from test_domain import kill_node, start_node, wait_for  # noqa: E402
from test_identity import Host, Tsp, ia_dstm, ia_status, in_netns, opt  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

X6 = "fd00:d57::66"
ATTACK6 = "fd00:d57:1::66"  # x's address on the attacking /64
C1 = client_ipv6(1)
N = 10000


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(access="dhcpv6", clients=1)
        lab.plug("x", X6)
        lab.exec("x", "ip", "addr", "add", ATTACK6 + "/64", "dev", "eth0", "nodad", check=True)
        lab.exec("srv", "ip", "-6", "route", "add", "fd00:d57:1::/64", "dev", "eth0", check=True)
        # The TEP serves the attacker's /64 too: its Solicits really compete for the pool.
        cfg = lab.config("srv")
        cfg["teps"][0]["clients"] = ["fd00:d57::/64", "fd00:d57:1::/64"]
        kill_node(lab, "srv", signal.SIGTERM)
        start_node(lab, "srv", "dstmd", lab.write_config("srv", "fair.json", cfg))
        yield lab
    finally:
        lab.down()


def counters(lab):
    return lab.ctl("srv", "counters")


def legit_dhcpv6(lab, tag):
    """A new client at c1's address: Solicit with Rapid Commit; seconds until its lease."""
    h = Host(lab, "c1", C1)
    try:
        duid = opt(1, b"\0\3\0\1\2\0\0\0" + struct.pack("!H", tag))
        t0 = time.monotonic()
        for _ in range(4):  # a lost datagram is retransmitted, as a client would
            r = h.xchg(DHCP6_Solicit, duid, DHCP6OptElapsedTime(), DHCP6OptRapidCommit(),
                       ia_dstm(1), timeout=0.5)
            if r and r[0] == 7 and ia_status(r) and ia_status(r)[0][0] == 0:
                return time.monotonic() - t0
        return None
    finally:
        h.close()


def test_solicit_flood_from_another_64(lab):
    counters(lab)  # warm up the control socket
    sent = {"n": 0}
    done = threading.Event()

    def flood():
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((ATTACK6, 0))
        s.setblocking(False)
        ifindex = socket.if_nametoindex("eth0")
        head = bytes(DHCP6_Solicit(trid=1)) + bytes(DHCP6OptElapsedTime())
        # At least N, and on until the legitimate client has its answer: a fast
        # sender would otherwise be done before the client asks.
        i = 0
        while i < N or not done.is_set():
            msg = head + opt(1, b"\0\4" + os.urandom(14)) + ia_dstm(1)
            while True:
                try:
                    s.sendto(msg, ("ff02::1:2", 547, 0, ifindex))
                    break
                except BlockingIOError:
                    time.sleep(0.001)
            i += 1
            sent["n"] = i
        return s

    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "s", in_netns(lab.netns("x"), flood)))
    t.start()
    try:
        wait_for(lambda: sent["n"] >= N // 5, 30, "the flood to start")
        during = sent["n"]
        secs = legit_dhcpv6(lab, 1)
        after = sent["n"]
    finally:
        done.set()
        t.join()
        if "s" in result:
            result["s"].close()
    assert secs is not None and secs < 2.0, secs
    assert after > during, "the flood was over when the client asked: %d sent" % during
    time.sleep(1)
    c = counters(lab)
    print("\nflood: client served in %.3f s with %d of %d sent; dhcp6: rx_solicit %d, "
          "drop_limit %d, tx_advertise %d, clients_now %d, evicted_clients %d"
          % (secs, during, N, c["dhcp6_rx_solicit"], c["dhcp6_drop_limit"],
             c["dhcp6_tx_advertise"], c["dhcp6_clients_now"], c["dhcp6_evicted_clients"]))
    rx = c["dhcp6_rx_solicit"]
    assert rx >= N // 2, c  # dstmd heard the flood (the socket may drop some)
    # x's /64 holds its share at most: the pool is not drained.
    mine = [l for l in lab.ctl("srv", "leases") if l["ipv6"].startswith("fd00:d57:1:")]
    assert len(mine) <= c["per_64"], (len(mine), c["per_64"])
    assert c["dhcp6_drop_limit"] > 0 and c["dhcp6_evicted_clients"] >= 0, c
    assert c["dhcp6_clients_now"] <= 16384, c
    # Another legitimate client after the flood, and the flood's offers end.
    secs = legit_dhcpv6(lab, 2)
    assert secs is not None and secs < 2.0, secs


def test_idle_tsp_sessions_from_another_64(lab):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 500:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, N + 500))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []

    def attack():
        for _ in range(N):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((ATTACK6, 0))
            try:
                s.connect((SRV6, 3653))
            except BlockingIOError:
                pass
            socks.append(s)
        # Log in and stay idle: VERSION and ANONYMOUS, then nothing.
        deadline = time.time() + 60
        pending = list(socks)
        while pending and time.time() < deadline:
            rest = []
            for s in pending:
                try:
                    s.send(b"VERSION=2.0.0\r\nAUTHENTICATE ANONYMOUS\r\n")
                except (BlockingIOError, OSError) as e:
                    if getattr(e, "errno", None) in (11, 115, 107):  # not connected yet
                        rest.append(s)
            pending = rest
            time.sleep(0.05)

    try:
        in_netns(lab.netns("x"), attack)
        time.sleep(1)
        c = counters(lab)
        assert c["sessions_evicted_idle"] > 0, c
        t0 = time.monotonic()
        t = Tsp(lab, "c1", C1)
        try:
            st, _ = t.command("create")
        finally:
            t.close()
        secs = time.monotonic() - t0
        assert st == 200 and secs < 2.0, (st, secs)
        c = counters(lab)
        print("\nsessions: client served in %.3f s; sessions_now %d, evicted_idle %d, "
              "tsp_sessions %d" % (secs, c["sessions_now"], c["sessions_evicted_idle"],
                                   c.get("tsp_sessions", -1)))
        # One /64 holds at most its share of the sessions.
        assert c["sessions_now"] <= c.get("connections_per_64", 1250) + 10, c
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

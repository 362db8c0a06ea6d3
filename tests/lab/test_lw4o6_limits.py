"""lw4o6's per-sender limit against the lab (scripts/lab up --access dhcpv6 --portset psid,
DESIGN §8). lwB4s solicit from link-local addresses, so a /64 names nobody: dstmd keys a new
lw4o6 lease on the whole source address (lw4o6.per_source, default 4;
lw4o6.allocations_per_source, default 2 a second). A host on the bridge cycling 500 DUIDs
through Solicits with Rapid Commit from one link-local address gets at most 4 leases, each
refusal is NoAddrsAvail in its IA and counted (lw4o6_refused_quota, lw4o6_refused_rate,
dhcp6_drop_limit), the IPv6 pool keeps its room (lw4o6_pool_free), and an lwB4 on another
link-local address still gets its lease. A reload gives the flooding host no fresh quota.
With a pool of seven addresses and no per-sender limit, a full pool refuses at once
(lw4o6_pool_full) and a lease revoked elsewhere is found again by one sweep (lw4o6_sweeps).

The hosts are namespaces of their own ("<lab>-b6", "<lab>-b7") plugged into the bridge the way
DESIGN §8 allows; the test removes them."""

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab import Lab  # noqa: E402
from test_lw4o6 import DHCP_SCRIPT, LW6POOL, LwB4, ia_na_address, restart_node  # noqa: E402

PER_SOURCE = 4  # the default of lw4o6.per_source (the lab's config leaves it out)
FLOOD = 500

# Run in a host's namespace: FLOOD Solicits with Rapid Commit, one DUID each, all from the
# link-local address of eth0; print how many IAs got an address and how many NoAddrsAvail.
FLOOD_SCRIPT = r"""
import json, socket, struct, sys
from scapy.layers.dhcp6 import (DHCP6_Solicit, DHCP6OptClientId, DHCP6OptOptReq,
    DHCP6OptIA_NA, DHCP6OptElapsedTime, DHCP6OptRapidCommit, DUID_LL)
iface, n, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
idx = socket.if_nametoindex(iface)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 546, 0, idx))
s.settimeout(1)

def ia_status(b):
    i = 4
    while i + 4 <= len(b):
        code, ln = struct.unpack("!HH", b[i:i + 4])
        if code == 3:
            body, j = b[i + 16:i + 4 + ln], 0
            while j + 4 <= len(body):
                c2, l2 = struct.unpack("!HH", body[j:j + 4])
                if c2 == 5:
                    return "granted"
                if c2 == 13:
                    return "status%d" % struct.unpack("!H", body[j + 4:j + 6])[0]
                j += 4 + l2
            return "empty"
        i += 4 + ln
    return "no_ia"

got = {}
for k in range(base, base + n):
    mac = "02:00:5e:%02x:%02x:%02x" % (0x10, k >> 8, k & 0xff)
    trid = 0x10000 + k
    sol = DHCP6_Solicit(trid=trid) / DHCP6OptClientId(duid=DUID_LL(lladdr=mac)) / \
        DHCP6OptElapsedTime() / DHCP6OptRapidCommit() / DHCP6OptOptReq(reqopts=[96]) / \
        DHCP6OptIA_NA(iaid=1)
    s.sendto(bytes(sol), ("ff02::1:2", 547, 0, idx))
    r = "timeout"
    try:
        while True:
            b = s.recvfrom(4096)[0]
            if len(b) >= 4 and int.from_bytes(b[1:4], "big") == trid & 0xffffff:
                r = ia_status(b)
                break
    except socket.timeout:
        pass
    got[r] = got.get(r, 0) + 1
print(json.dumps(got))
"""


@pytest.fixture(scope="module")
def limlab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    lab = Lab()
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(access="dhcpv6", clients=1, portset="psid")
        yield lab
    finally:
        for node in ("b6", "b7"):
            subprocess.run(["ip", "netns", "del", lab.netns(node)], stderr=subprocess.DEVNULL)
        lab.down()


def lw_leases(lab):
    return [x for x in lab.ctl("srv", "leases")
            if x["state"] == "active" and ipaddress.ip_address(x["ipv6"]) in LW6POOL]


def test_one_link_local_address_cycling_duids_gets_its_share(limlab):
    cfg = limlab.config("srv")
    assert "per_source" not in cfg["lw4o6"], cfg["lw4o6"]  # the default applies
    before = limlab.ctl("srv", "counters")
    flood = LwB4(limlab, "b6")
    got = flood.py(FLOOD_SCRIPT, "eth0", FLOOD, 0, timeout=600)
    print("flood of %d DUIDs from one link-local address:" % FLOOD, got)
    assert 1 <= got.get("granted", 0) <= PER_SOURCE, got
    # Each refusal is NoAddrsAvail (2) in the IA; a few lost datagrams may time out.
    assert got.get("status2", 0) >= FLOOD - PER_SOURCE - 10, got
    after = limlab.ctl("srv", "counters")
    refused = (after["lw4o6_refused_quota"] - before["lw4o6_refused_quota"]
               + after["lw4o6_refused_rate"] - before["lw4o6_refused_rate"])
    print("counters:", {k: after[k] for k in after if k.startswith("lw4o6_")})
    assert refused >= got["status2"], (before, after)
    assert after["lw4o6_refused_quota"] > before["lw4o6_refused_quota"]
    assert after["dhcp6_drop_limit"] - before["dhcp6_drop_limit"] >= got["status2"]
    held = lw_leases(limlab)
    assert len(held) <= PER_SOURCE, held
    # The pool keeps its room: 4096 addresses (less the Subnet-Router anycast) all but a few free.
    assert after["lw4o6_pool_free"] >= LW6POOL.num_addresses - 1 - PER_SOURCE - 2, after

    # A legitimate lwB4 on another link-local address: Solicit, Advertise, Request, Reply.
    b7 = LwB4(limlab, "b7")
    r = b7.py(DHCP_SCRIPT, "eth0", b7.mac)
    assert r["reply"][0] == 7
    v6 = ia_na_address(r["reply"][1])
    assert v6 and ipaddress.ip_address(v6) in LW6POOL, r
    assert any(x["ipv6"] == v6 for x in lw_leases(limlab)), lw_leases(limlab)
    b7.remove()

    # A reload keeps who took what: the flooding host gets nothing more after a SIGHUP.
    reloads = limlab.ctl("srv", "counters")["reloads"]
    with open(limlab.path("srv", "srv.pid")) as f:
        os.kill(int(f.read()), signal.SIGHUP)
    deadline = time.time() + 20
    while time.time() < deadline and limlab.ctl("srv", "counters")["reloads"] == reloads:
        time.sleep(0.2)
    assert limlab.ctl("srv", "counters")["reloads"] == reloads + 1
    quota = limlab.ctl("srv", "counters")["lw4o6_refused_quota"]
    got = flood.py(FLOOD_SCRIPT, "eth0", 20, 1000, timeout=120)
    assert got.get("granted", 0) == 0, got
    assert limlab.ctl("srv", "counters")["lw4o6_refused_quota"] >= quota + got["status2"] > quota
    flood.remove()


def test_a_full_pool_refuses_at_once_and_finds_a_revoked_address(limlab):
    path = limlab.path("srv", "srv.json")
    with open(path) as f:
        text = f.read()
    cfg = json.loads(text)
    small = ipaddress.ip_network("fd00:d57::1000/125")  # 8 addresses, 7 lent (not ::1000)
    cfg["lw4o6"].update({"ipv6_pool": str(small), "per_source": 0, "allocations_per_source": 0})
    host = None
    try:
        with open(path, "w") as f:
            json.dump(cfg, f)
        restart_node(limlab, "srv", "src/dstmd/dstmd")
        before = limlab.ctl("srv", "counters")
        # Leases of the first test may sit in the small pool already.
        held = [x for x in limlab.ctl("srv", "leases")
                if x["state"] == "active" and ipaddress.ip_address(x["ipv6"]) in small]
        host = LwB4(limlab, "b6")
        t0 = time.time()
        got = host.py(FLOOD_SCRIPT, "eth0", 30, 2000, timeout=300)
        took = time.time() - t0
        print("30 DUIDs on a pool of 7:", got, "held before:", len(held))
        assert got.get("granted", 0) == 7 - len(held), got
        after = limlab.ctl("srv", "counters")
        assert after["lw4o6_pool_full"] - before["lw4o6_pool_full"] == 30 - got["granted"]
        assert after["lw4o6_pool_free"] == 0, after
        # A refusal on a full pool is no search: a sweep only every ten seconds at most.
        assert after["lw4o6_sweeps"] - before["lw4o6_sweeps"] <= 1 + took / 10, (took, after)
        mine = [x for x in limlab.ctl("srv", "leases")
                if x["state"] == "active" and ipaddress.ip_address(x["ipv6"]) in small]
        assert len(mine) == 7, mine
        # Ended elsewhere (revoked): the index does not know; the lease count of the pool's /64
        # says an owner is stale, so the next new lwB4 finds the address again (its hash slot
        # or a sweep).
        limlab.ctl("srv", "revoke", address=mine[0]["ipv4"], port=mine[0]["port_lo"])
        deadline = time.time() + 10
        while time.time() < deadline and any(
                x["ipv6"] == mine[0]["ipv6"] and x["state"] == "active"
                for x in limlab.ctl("srv", "leases")):
            time.sleep(0.2)
        got = host.py(FLOOD_SCRIPT, "eth0", 1, 3000, timeout=60)
        assert got == {"granted": 1}, got
        assert any(x["ipv6"] == mine[0]["ipv6"] and x["state"] == "active"
                   for x in limlab.ctl("srv", "leases"))
    finally:
        with open(path, "w") as f:
            f.write(text)
        if host:
            host.remove()
        restart_node(limlab, "srv", "src/dstmd/dstmd")

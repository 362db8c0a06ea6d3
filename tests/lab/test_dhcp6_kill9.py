"""dstmd killed with SIGKILL under DHCPv6 load keeps every lease it
acknowledged: a client pipelines Solicit/Request exchanges for many DUIDs
(so that commits gather many leases, and a lease's insert, its offer and
its confirmation fall in one batch), dstmd is killed at a random moment,
several times, and every lease a Reply granted is then in the database
with the address the Reply named. And the cap on offers (they hold at
most half of the pools) counts only the offers that no request has taken
yet. dstmd in one namespace, the client in another, joined by a veth
pair."""

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from test_dhcp6 import DSTMD, ctl, first, ia_dstm, ia_parse, in_netns, opt, options, sh

pytestmark = [
    pytest.mark.skipif(not os.path.exists(DSTMD), reason="dstmd is not built"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
]

SRV6, CLI6 = "fd00:d9::1", "fd00:d9::11"
IA_DSTM_CODE = 65001
WINDOW = 64  # exchanges in flight at once


def duid(i):
    return struct.pack("!HHI", 4, 0, i) + b"k9"  # DUID-UUID-like, unique per client


def message(kind, trid, d, v4=None, server_id=None):
    body = opt(1, d) + opt(8, b"\0\0") + ia_dstm(1, v4)
    if server_id:
        body += opt(2, server_id)
    return struct.pack("!I", (kind << 24) | trid) + body


def lease_of(data):
    """(DUID, v4) that a Reply or Advertise grants, or None."""
    opts = options(data[4:])
    d = first(opts, 1)
    ia = first(opts, IA_DSTM_CODE)
    if d is None or ia is None:
        return None
    r = ia_parse(ia)
    if r["status"] not in (None, 0) or not r["v4"]:
        return None
    return d, r["v4"], first(opts, 2)


@pytest.fixture
def net():
    tag = "k9-%d" % os.getpid()
    ns_s, ns_c = tag + "-s", tag + "-c"
    vs, vc = "k9s%d" % (os.getpid() % 100000), "k9c%d" % (os.getpid() % 100000)
    tmp = tempfile.mkdtemp(prefix="dstm-k9-")
    try:
        sh("ip", "netns", "add", ns_s)
        sh("ip", "netns", "add", ns_c)
        sh("ip", "link", "add", vs, "netns", ns_s, "type", "veth", "peer", vc, "netns", ns_c)
        for ns, dev, a in ((ns_s, vs, SRV6), (ns_c, vc, CLI6)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", a + "/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        yield {"ns_s": ns_s, "ns_c": ns_c, "vs": vs, "vc": vc, "tmp": tmp}
    finally:
        subprocess.run(["ip", "netns", "del", ns_s], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_c], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def start(net, pool="198.18.0.1-198.18.255.254"):
    cfg = {"database": os.path.join(net["tmp"], "leases.db"),
           "control": os.path.join(net["tmp"], "control.sock"),
           "lifetime": 3600, "quarantine": 10,
           "listen": [{"address": "[%s]:3653" % SRV6}],
           "pools": [{"name": "k9", "ranges": [pool]}],
           "teps": [{"name": "tep1", "ipv6": "fd00:d9::2", "ipv4": "198.51.100.1",
                     "clients": ["fd00:d9::/32"]}],
           "limits": {"per_64": 0},
           "dhcpv6": {"enable": True, "interfaces": [net["vs"]], "form": "ia_dstm",
                      "limits": {"per_duid": 4, "per_64": 0}}}
    path = os.path.join(net["tmp"], "dstmd.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    if os.path.exists(cfg["control"]):
        os.unlink(cfg["control"])
    log = open(os.path.join(net["tmp"], "dstmd.log"), "a")
    p = subprocess.Popen(["ip", "netns", "exec", net["ns_s"], DSTMD, "-d", "-c", path],
                         stdout=log, stderr=log)
    for _ in range(200):
        if os.path.exists(cfg["control"]):
            return p
        time.sleep(0.05)
    p.kill()
    pytest.fail("dstmd did not start: " + open(os.path.join(net["tmp"], "dstmd.log")).read())


def client_socket(net):
    """The client's socket and where it sends (All_DHCP_Relay_Agents_and_Servers on its link)."""
    def mk():
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((CLI6, 0))
        s.settimeout(0.5)
        return s, ("ff02::1:2", 547, 0, socket.if_nametoindex(net["vc"]))
    return in_netns(net["ns_c"], mk)


def send(s, msg, server):
    for _ in range(50):  # a fresh veth takes a moment to carry (ENETUNREACH until then)
        try:
            return s.sendto(msg, server)
        except OSError as e:
            if e.errno != 101:
                raise
            time.sleep(0.1)
    raise OSError(101, "the client's link never came up")


def test_kill9_under_dhcp6_load_keeps_every_acknowledged_lease(net):
    s, server = client_socket(net)
    acked = {}
    counter = iter(range(1, 1 << 30))

    def worker(stop):
        trid = 0
        while not stop.is_set():
            batch = {duid(next(counter)): None for _ in range(WINDOW)}
            try:
                for d in batch:
                    trid = (trid + 1) & 0xFFFFFF
                    s.sendto(message(1, trid, d), server)
                offered = {}
                for _ in batch:
                    got = lease_of(s.recv(2048))
                    if got:
                        offered[got[0]] = got
                for d, (_, v4, sid) in offered.items():
                    trid = (trid + 1) & 0xFFFFFF
                    s.sendto(message(3, trid, d, v4, sid), server)
                for _ in offered:
                    data = s.recv(2048)
                    got = lease_of(data)
                    if got and data[0] == 7:
                        acked[got[0]] = got[1]
            except OSError:  # a timeout: dstmd is gone, or a datagram was
                continue

    for _ in range(4):
        p = start(net)
        stop = threading.Event()
        t = threading.Thread(target=worker, args=(stop,))
        t.start()
        time.sleep(random.uniform(0.5, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        stop.set()
        t.join()
    s.close()

    db = sqlite3.connect(os.path.join(net["tmp"], "leases.db"))
    rows = db.execute("SELECT identity, v4, state FROM lease").fetchall()
    db.close()
    held = {ident: socket.inet_ntoa(struct.pack("!I", v4)) for ident, v4, state in rows
            if state == "active"}
    assert len(acked) > 200, "too few exchanges completed: %d" % len(acked)
    lost = [d.hex() for d, v4 in acked.items() if held.get("dhcp6:%s:00000001" % d.hex()) != v4]
    assert not lost, "acknowledged leases lost: %s of %d, e.g. %s" % (len(lost), len(acked),
                                                                      lost[:3])


def test_offers_taken_by_requests_hold_nothing(net):
    """40 addresses: offers may hold 20. 30 clients complete their exchanges within
    the offer hold (10 s): each Advertise still reserves its address, since the
    offers that requests took hold nothing."""
    p = start(net, pool="198.18.0.1-198.18.0.40")
    s, server = client_socket(net)
    try:
        done = 0
        for i in range(30):
            d = duid(100000 + i)
            send(s, message(1, 2 * i + 1, d), server)
            got = lease_of(s.recv(2048))
            assert got, "no Advertise for client %d" % i
            send(s, message(3, 2 * i + 2, d, got[1], got[2]), server)
            data = s.recv(2048)
            done += bool(lease_of(data)) and data[0] == 7
        c = ctl(os.path.join(net["tmp"], "control.sock"), "counters")
        assert done == 30 and c["dhcp6_offers_unheld"] == 0, (done, c["dhcp6_offers_unheld"])
    finally:
        s.close()
        p.terminate()
        p.wait()

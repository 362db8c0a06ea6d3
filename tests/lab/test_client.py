"""End-to-end tests of dstm-client alone: the real program in a network
namespace of its own, facing tests/lab/client_peer.py (a minimal TSP
server and TEP with a real IPv4 stack behind it) in another. Real
packets, real TUN, raw socket, netlink; every wait bounded.

The tests of the whole domain (real dstmd and dstm-tep) are in
test_domain.py; these pin the client's own behaviour: binding, renewal
without loss, the server's delete, expiry, release, on-demand.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_client.py
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import time

import pytest

from lab import PATTERN, hashed_exchange, listening

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DSTM_BUILD") or os.path.join(ROOT, "build")
BUILD = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
CLIENT = os.path.join(BUILD, "src/client/dstm-client")
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "client_peer.py")
FAR4 = "198.51.100.2"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not os.access(CLIENT, os.X_OK), reason="dstm-client is not built"),
]


def sh(*cmd, check=True, timeout=20):
    return subprocess.run(cmd, check=check, timeout=timeout, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


class Bed:
    """Two namespaces joined by a veth: the client's and the peer's."""

    def __init__(self, tmp, mode="always-on", lifetime=6, redirect=None):
        tag = "client%d" % os.getpid()
        self.c, self.p = tag + "-c", tag + "-p"
        self.tmp = str(tmp)
        self.sock = os.path.join(self.tmp, "client.sock")
        self.peer = self.client = None
        self.events = []
        for ns in (self.c, self.p):
            sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "cv0", "netns", self.c, "type", "veth", "peer", "name", "pv0",
           "netns", self.p)
        for ns, dev, addrs in ((self.c, "cv0", ["fd00:d57::11"]),
                               (self.p, "pv0", ["fd00:d57::1", "fd00:d57::2", "fd00:d57::3"])):
            self.ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.%s.accept_dad=0" % dev)
            self.ns(ns, "ip", "link", "set", "lo", "up")
            self.ns(ns, "ip", "link", "set", dev, "up")
            for a in addrs:
                self.ns(ns, "ip", "-6", "addr", "add", a + "/64", "dev", dev, "nodad")
        self.peer = subprocess.Popen(
            ["ip", "netns", "exec", self.p, "python3", PEER, "fd00:d57::1", "fd00:d57::2",
             "198.51.100.1", FAR4, "192.0.2.10", str(lifetime), "fd00:d57::3"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self.peer.stdout.readline())["event"] == "ready"
        if redirect:
            self.peer_cmd("redirect " + redirect)
        os.set_blocking(self.peer.stdout.fileno(), False)
        self.conf = os.path.join(self.tmp, "client.json")
        with open(self.conf, "w") as f:
            conf = {"server": "[fd00:d57::1]:3653", "mode": mode, "control": self.sock,
                    "routes": ["198.51.100.0/24"], "backoff_max": 2}
            # As scripts/lab: the kernel fast path (default auto) or not.
            if os.environ.get("DSTM_CLIENT_FAST_PATH"):
                conf["fast_path"] = os.environ["DSTM_CLIENT_FAST_PATH"]
            json.dump(conf, f)
        self.log = open(os.path.join(self.tmp, "client.log"), "w")
        self.client = subprocess.Popen(["ip", "netns", "exec", self.c, CLIENT, "-d", "-v",
                                        "-c", self.conf], stdout=self.log,
                                       stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.sock), 5, "the control socket")

    def ns(self, ns, *cmd, check=True, timeout=20):
        return sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    def cns(self, *cmd, **kw):
        return self.ns(self.c, *cmd, **kw)

    def ctl(self, command):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(self.sock)
        s.sendall(json.dumps({"version": 1, "command": command, "args": {}}).encode() + b"\n")
        reply = json.loads(s.makefile().readline())
        s.close()
        assert reply["ok"], reply
        return reply["result"]

    def peer_cmd(self, cmd):
        self.peer.stdin.write(cmd + "\n")
        self.peer.stdin.flush()

    def peer_events(self):
        while True:
            line = self.peer.stdout.readline()
            if not line:
                break
            self.events.append(json.loads(line))
        return self.events

    def addresses(self):
        out = self.cns("ip", "-4", "-o", "addr", "show", "dev", "dstm0", check=False).stdout
        return [w.split("/")[0] for line in out.splitlines() for w in line.split()
                if "/" in w]

    def wait_bound(self, timeout=5):
        return wait_for(lambda: (lambda s: s if s["state"] == "bound" else None)(
            self.ctl("status")), timeout, "state bound")

    def close(self):
        if self.client and self.client.poll() is None:
            self.client.terminate()
            try:
                self.client.wait(5)
            except subprocess.TimeoutExpired:
                self.client.kill()
        if self.peer:
            self.peer.kill()
            self.peer.wait()
        for ns in (self.c, self.p):
            sh("ip", "netns", "del", ns, check=False)
        self.log.close()


@pytest.fixture
def bed(tmp_path):
    beds = []

    def make(**kw):
        b = Bed(tmp_path, **kw)
        beds.append(b)
        return b

    yield make
    for b in beds:
        b.close()


def test_always_on_binds_and_carries_icmp_udp_tcp(bed):
    b = bed()
    st = b.wait_bound()
    assert st["ipv4"] == "192.0.2.10"
    assert st["tep_ipv6"] == "fd00:d57::2" and st["tep_ipv4"] == "198.51.100.1"
    assert st["mode"] == "always-on" and st["interface"] == "dstm0"
    assert st["lifetime"] == 6 and 0 < st["expires_in"] <= 6
    assert st["mtu"] == 1460
    assert b.addresses() == ["192.0.2.10"]
    route = b.cns("ip", "-4", "route", "show", "198.51.100.0/24").stdout
    assert "dev dstm0" in route and "src 192.0.2.10" in route
    # the create carried the global and the link-local address
    create = [e for e in b.peer_events() if e["event"] == "create"][0]
    assert create["v6"] == "fd00:d57::11" and create["ll"]
    # ICMP, UDP and TCP both ways, through the tunnel
    assert b.cns("ping", "-c", "2", "-W", "2", FAR4, check=False).returncode == 0
    srv = listening(["ip", "netns", "exec", b.p, "python3", "-c",
                     "import socket\n"
                     "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                     "u.bind(('%s',7)); u.settimeout(5)\n"
                     # listening before the UDP answer, which sends the client on to TCP
                     "t=socket.socket(); t.bind(('%s',80)); t.listen(1)\n"
                     "print('ready', flush=True)\n"
                     "d,a=u.recvfrom(100); u.sendto(d.upper(),a)\n"
                     "t.settimeout(5); c,a=t.accept(); c.sendall(c.recv(100)[::-1])\n"
                     % (FAR4, FAR4)])
    out = b.cns("python3", "-c",
                "import socket\n"
                "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(3)\n"
                "u.sendto(b'abc',('%s',7)); print(u.recv(10).decode())\n"
                "t=socket.create_connection(('%s',80),3); t.sendall(b'dstm')\n"
                "print(t.recv(10).decode(), t.getsockname()[0])\n" % (FAR4, FAR4)).stdout
    srv.wait(10)
    assert out.split() == ["ABC", "mtsd", "192.0.2.10"]
    n = b.ctl("counters")
    # Through the userspace path or the kernel fast path (dstm-client(8)).
    assert n["tunnel_tx_packets"] + n["fast_tx_packets"] > 0
    assert n["tun_tx_packets"] + n["fast_rx_packets"] > 0
    assert n["drop_not_tep"] == 0 and n["drop_bad_source"] == 0 and n["drop_malformed"] == 0


def test_renewal_across_lifetimes_without_loss(bed):
    b = bed(lifetime=3)
    b.wait_bound()
    # 0.1 s pings over more than three lifetimes
    r = b.cns("ping", "-c", "100", "-i", "0.1", "-W", "1", FAR4, check=False, timeout=30)
    assert " 0% packet loss" in r.stdout, r.stdout
    n = b.ctl("counters")
    assert n["renewals"] >= 5 and n["acquisitions"] == 1 and n["expiries"] == 0
    renews = [e for e in b.peer_events() if e["event"] == "renew"]
    assert renews and all(e["v4"] == "192.0.2.10" for e in renews)


def test_server_delete_removes_address_at_once_then_reacquires(bed):
    b = bed()
    b.wait_bound()
    b.peer_cmd("delete")
    wait_for(lambda: b.addresses() == [], 1.0, "the address to leave dstm0")
    assert "198.51.100.0/24" not in b.cns("ip", "-4", "route").stdout
    # always-on: a new address after the back-off (first step <= 1 s)
    st = b.wait_bound(timeout=4)
    assert st["ipv4"] == "192.0.2.11"
    assert b.addresses() == ["192.0.2.11"]
    n = b.ctl("counters")
    assert n["server_deletes"] == 1 and n["acquisitions"] == 2
    assert any(e["event"] == "info-from-client" for e in b.peer_events())


def test_expiry_without_renewal_removes_address(bed):
    b = bed(lifetime=3)
    b.wait_bound()
    b.peer_cmd("mute")
    t0 = time.monotonic()
    wait_for(lambda: b.addresses() == [], 5, "the address to expire")
    assert 2.0 < time.monotonic() - t0 < 4.0
    assert "198.51.100.0/24" not in b.cns("ip", "-4", "route").stdout
    st = b.ctl("status")
    assert st["state"] in ("acquiring", "expired") and st["ipv4"] is None
    assert b.ctl("counters")["expiries"] == 1
    assert b.cns("ping", "-c", "1", "-W", "1", FAR4, check=False).returncode != 0


def test_sigterm_releases_the_lease(bed):
    b = bed()
    b.wait_bound()
    b.client.terminate()
    assert b.client.wait(5) == 0
    ev = wait_for(lambda: [e for e in b.peer_events() if e["event"] == "delete-from-client"],
                  2, "the release")
    assert ev[0]["v4"] == "192.0.2.10"
    assert b.cns("ip", "link", "show", "dstm0", check=False).returncode != 0


def test_on_demand_first_packet_acquires_and_early_connections_keep_working(bed):
    b = bed(mode="on-demand")
    time.sleep(0.5)
    st = b.ctl("status")
    assert st["state"] == "idle" and st["ipv4"] is None
    assert b.addresses() == ["192.0.0.8"]
    assert [e for e in b.peer_events() if e["event"] == "create"] == []
    srv = listening(["ip", "netns", "exec", b.p, "python3", "-c",
                     "import socket\n"
                     "t=socket.socket(); t.bind(('%s',80)); t.listen(2); t.settimeout(8)\n"
                     "print('ready', flush=True)\n"
                     "for i in range(2):\n"
                     "  c,a=t.accept(); c.sendall(a[0].encode()); c.close()\n" % FAR4])
    # a TCP connection opened with no lease: its SYN starts the acquisition;
    # the first connection succeeds and keeps its placeholder source
    out = b.cns("python3", "-c",
                "import socket,time\n"
                "t0=time.time(); t=socket.create_connection(('%s',80),5)\n"
                "print(t.getsockname()[0], t.recv(50).decode(), int((time.time()-t0)*1000))\n"
                "u=socket.create_connection(('%s',80),5)\n"
                "print(u.getsockname()[0], u.recv(50).decode())\n" % (FAR4, FAR4)).stdout
    srv.wait(10)
    first, second = out.splitlines()
    src, seen, ms = first.split()
    assert src == "192.0.0.8" and seen == "192.0.2.10"  # translated on the wire
    assert int(ms) < 1000
    assert second.split() == ["192.0.2.10", "192.0.2.10"]  # opened after: untouched
    n = b.ctl("counters")
    assert n["early_translated_out"] > 0 and n["early_translated_in"] > 0
    assert n["acquisitions"] == 1 and n["drop_queue_full"] == 0
    assert b.ctl("status")["state"] == "bound"


def test_redirect_to_broker(bed):
    b = bed(redirect="fd00:d57::3")
    st = b.wait_bound()
    assert st["server"] == "fd00:d57::3"
    ev = b.peer_events()
    assert [e["event"] for e in ev if e["event"] in ("redirected", "create")] == [
        "redirected", "create"]
    assert [e for e in ev if e["event"] == "create"][0]["server"] == "fd00:d57::3"
    assert b.ctl("counters")["redirects"] == 1
    assert b.cns("ping", "-c", "1", "-W", "2", FAR4, check=False).returncode == 0


def test_server_restart_keeps_lease_and_traffic(bed):
    b = bed(lifetime=4)
    b.wait_bound()
    ping = subprocess.Popen(["ip", "netns", "exec", b.c, "ping", "-c", "50", "-i", "0.1", "-W",
                             "1", FAR4], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    b.peer_cmd("drop")
    out, _ = ping.communicate(timeout=20)
    assert " 0% packet loss" in out, out
    st = b.ctl("status")
    assert st["state"] == "bound" and st["ipv4"] == "192.0.2.10"
    n = b.ctl("counters")
    assert n["session_failures"] >= 1 and n["sessions"] >= 2
    assert n["acquisitions"] == 1 and n["renewals"] >= 1 and n["expiries"] == 0


def test_path_mtu_shrinks(bed):
    b = bed()
    st = b.wait_bound()
    assert st["mtu"] == 1460
    # The IPv6 path toward the TEP shrinks to 1400 (a route's MTU here; a
    # Packet Too Big would do the same to the kernel's route): within its
    # once-a-second check the client lowers the DTI's MTU to 1360, after
    # which a DF packet sized for the old MTU is refused at the source.
    b.cns("ip", "-6", "route", "replace", "fd00:d57::/64", "dev", "cv0", "proto", "kernel",
          "metric", "256", "mtu", "1400")
    wait_for(lambda: b.ctl("status")["mtu"] == 1360, 2.5, "the DTI MTU to follow the path")
    assert "mtu 1360" in b.cns("ip", "link", "show", "dstm0").stdout
    r = b.cns("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1432", FAR4, check=False)
    assert r.returncode != 0 and re.search(r"mtu ?= ?1360", r.stdout), r.stdout
    assert b.cns("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1332", FAR4,
                 check=False).returncode == 0
    # bulk TCP from the far side fits the new MTU
    srv = listening(["ip", "netns", "exec", b.p, "python3", "-c",
                     "import socket\n"
                     "t=socket.socket(); t.bind(('%s',80)); t.listen(1); t.settimeout(8)\n"
                     "print('ready', flush=True)\n"
                     "c,a=t.accept(); c.sendall(bytes(300000)); c.close()\n" % FAR4])
    out = b.cns("python3", "-c",
                "import socket\nt=socket.create_connection(('%s',80),5); n=0\n"
                "while True:\n  d=t.recv(65536)\n  if not d: break\n  n+=len(d)\n"
                "print(n)\n" % FAR4, timeout=20).stdout
    srv.wait(10)
    assert out.strip() == "300000"


def test_bulk_tcp_both_ways_through_the_offload_path(bed):
    """4 MB each way through the tunnel, hashed at both ends: the DTI's TCP
    super-packets are cut into segments that arrive intact (tun_rx_gso), or
    encapsulated whole by the kernel fast path and segmented by the kernel
    (fast_tx_gso), the way back is coalesced or not, and nothing is dropped."""
    b = bed(lifetime=60)
    b.wait_bound()
    size = 4 << 20
    out = hashed_exchange(b.p, b.cns, FAR4, 5001, size, back=size)
    # The upload's hash matched; the download's is the whole pattern's.
    assert out == ["True", hashlib.sha256(PATTERN * (size // 65536)).hexdigest()], out
    n = b.ctl("counters")
    # Super-packets: cut here (tun_rx_gso), or carried whole by the fast path.
    assert n["tun_rx_gso"] + n["fast_tx_gso"] > 0, n
    assert n["drop_offload"] == 0 and n["drop_malformed"] == 0 and n["drop_tun_write"] == 0
    assert n["drop_send_error"] == 0 and n["drop_too_big"] == 0

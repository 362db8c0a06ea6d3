"""DOTS server discovery against real peers, in network namespaces.

Each test builds its own two-namespace topology (a server side and a
client side joined by a veth pair), starts the real peer it needs inside
the server namespace (NSD, avahi-daemon, Kea DHCPv4, Kea DHCPv6, or a
scapy-built responder for malformed answers), runs dots-discover in the
client namespace and checks the ordered list and the counters it prints
with --json. Everything it starts is stopped and removed by the fixture's
finalizer; every wait is bounded. A test skips only when its peer's
package is absent.

Run as root: DOTS_DISCOVER=build/src/dots-discover/dots-discover pytest tests/lab/test_dots.py
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "dots")
ROOT = os.path.dirname(os.path.dirname(HERE))

SRV6, CLI6 = "fd00:d57:d0::1", "fd00:d57:d0::2"
SRV4, CLI4 = "192.0.2.1", "192.0.2.2"


def find_binary():
    env = os.environ.get("DOTS_DISCOVER")
    if env:
        return env
    for d in sorted(os.listdir(ROOT)):
        p = os.path.join(ROOT, d, "src", "dots-discover", "dots-discover")
        if d.startswith("build") and os.access(p, os.X_OK):
            return p
    return None


def sh(*args, check=True, timeout=20):
    return subprocess.run(args, check=check, timeout=timeout, capture_output=True, text=True)


class Lab:
    """Two namespaces, srv and cli, and a veth between them."""

    def __init__(self):
        if os.geteuid() != 0:
            pytest.skip("needs root for network namespaces")
        self.binary = find_binary()
        if not self.binary:
            pytest.skip("dots-discover is not built (set DOTS_DISCOVER)")
        tag = "dots%d%d" % (os.getpid() % 100000, int(time.time() * 1000) % 1000)
        self.srv, self.cli = tag + "s", tag + "c"
        self.vs, self.vc = tag[:10] + "vs", tag[:10] + "vc"
        self.dir = tempfile.mkdtemp(prefix="dots-lab-")
        self.procs = []
        sh("ip", "netns", "add", self.srv)
        sh("ip", "netns", "add", self.cli)
        sh("ip", "link", "add", self.vs, "netns", self.srv, "type", "veth", "peer", "name", self.vc, "netns", self.cli)
        for ns, dev, a6, a4 in ((self.srv, self.vs, SRV6, SRV4), (self.cli, self.vc, CLI6, CLI4)):
            self.ns(ns, "ip", "link", "set", "lo", "up")
            self.ns(ns, "ip", "-6", "addr", "add", a6 + "/64", "dev", dev, "nodad")
            if a4:
                self.ns(ns, "ip", "addr", "add", a4 + "/24", "dev", dev)
            self.ns(ns, "ip", "link", "set", dev, "up", "multicast", "on")
        # Link-local addresses must finish DAD before DHCPv6 and mDNS can use them.
        deadline = time.time() + 10
        while time.time() < deadline:
            out = self.ns(self.cli, "ip", "-6", "addr", "show", "dev", self.vc).stdout
            out += self.ns(self.srv, "ip", "-6", "addr", "show", "dev", self.vs).stdout
            if out.count("fe80") == 2 and "tentative" not in out:
                break
            time.sleep(0.2)

    def ns(self, ns, *args, check=True, timeout=20):
        return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)

    def start(self, argv, ready=None, wait=8.0, preexec=None):
        """Start a daemon in the server namespace; `ready` polls until it is up."""
        log = open(os.path.join(self.dir, os.path.basename(argv[0]) + ".out"), "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.srv] + argv, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        deadline = time.time() + wait
        while ready and time.time() < deadline:
            if p.poll() is not None:
                break
            if ready():
                return p
            time.sleep(0.2)
        if ready and not ready():
            log.flush()
            raise RuntimeError("%s did not start: %s" % (argv[0], open(log.name).read()[-2000:]))
        return p

    def discover(self, *args, timeout=30):
        r = self.ns(self.cli, self.binary, "--json", "-i", self.vc, *args, check=False, timeout=timeout)
        assert r.returncode in (0, 1), r.stderr
        return json.loads(r.stdout)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait(timeout=5)
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        pass
        sh("ip", "netns", "del", self.srv, check=False)
        sh("ip", "netns", "del", self.cli, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def need(prog):
    if not shutil.which(prog):
        pytest.skip("%s is not installed" % prog)


def fill(name, lab, **kv):
    text = open(os.path.join(FILES, name)).read()
    kv.setdefault("DIR", lab.dir)
    for k, v in kv.items():
        text = text.replace("@%s@" % k, v)
    out = os.path.join(lab.dir, name.replace(".in", ""))
    with open(out, "w") as f:
        f.write(text)
    return out


def udp_answers(lab, addr, port):
    """True once something answers a DNS query on addr:port inside the server namespace."""
    r = lab.ns(lab.srv, "/usr/bin/python3", "-c",
               "import socket,sys;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.settimeout(0.5);"
               "s.sendto(bytes.fromhex('abcd01000001000000000000076578616d706c65036e65740000060001'),('%s',%d));"
               "s.recv(512)" % (addr, port), check=False)
    return r.returncode == 0


def rows(out, method=None):
    return [(s["transport"], s["address"], s["port"], s["reference_identifier"])
            for s in out["servers"] if method is None or s["method"] == method]


def start_nsd(lab):
    need("nsd")
    shutil.copy(os.path.join(FILES, "example.net.zone"), lab.dir)
    conf = fill("nsd.conf.in", lab, ADDR6=SRV6, ADDR4=SRV4)
    lab.start(["nsd", "-d", "-c", conf], ready=lambda: udp_answers(lab, SRV6, 53))


# ---- S-NAPTR and DNS-SD against NSD ----

def test_snaptr_nsd(lab):
    start_nsd(lab)
    out = lab.discover("-6", "-m", "s-naptr", "--domain", "example.net", "--dns-server", SRV6)
    # Seed 003 §6: NAPTR order, then SRV priority; data.tcp through an "A" record at port 443.
    assert rows(out) == [
        ("signal.udp", "fd00:d57:d0::a", 5000, "example.net"),
        ("signal.udp", "fd00:d57:d0::b", 5100, "example.net"),
        ("signal.tcp", "fd00:d57:d0::a", 5001, "example.net"),
        ("data.tcp", "fd00:d57:d0::b", 443, "example.net"),
    ]
    assert out["counters"]["naptr_other_service"] >= 1  # the SIP record was skipped
    out4 = lab.discover("-4", "-m", "s-naptr", "--domain", "example.net", "--dns-server", "%s@53" % SRV4)
    assert [r[1] for r in rows(out4)] == ["192.0.2.10", "192.0.2.11", "192.0.2.10", "192.0.2.11"]


def test_snaptr_nxdomain_backoff(lab):
    start_nsd(lab)
    # Two interfaces' worth of passes ask for the same missing domain: the
    # second is not sent but waits for the NXDOMAIN back-off.
    out = lab.discover("-6", "-4", "-m", "s-naptr", "--domain", "missing.example.net", "--dns-server", SRV6)
    c = out["counters"]
    assert out["servers"] == []
    assert c["dns_nxdomain"] == 1
    assert c["dns_backoff_skipped"] == 1
    assert any("next try not before 300000 ms" in e["text"] for e in out["events"])


def test_dns_timeout_retries(lab):
    # No DNS server at all: a time-out is retried after 1 s, then gives up within the bound.
    t0 = time.time()
    out = lab.discover("-6", "-m", "s-naptr", "--domain", "example.net", "--dns-server", SRV6 + "@5399",
                       "--timeout", "500")
    assert out["servers"] == []
    assert out["counters"]["dns_timeouts"] >= 1
    assert out["counters"]["dns_retries"] >= 1
    assert time.time() - t0 < 10


def test_dnssd_nsd(lab):
    start_nsd(lab)
    out = lab.discover("-6", "-m", "dns-sd", "--domain", "example.net", "--dns-server", SRV6)
    # RFC 8973 spelling for the signal channel, the seed's for the data channel.
    assert rows(out) == [
        ("signal.udp", "fd00:d57:d0::c", 6000, "c.example.net"),
        ("data.tcp", "fd00:d57:d0::c", 6443, "c.example.net"),
    ]


# ---- mDNS against avahi-daemon ----

def test_mdns_avahi(lab):
    need("avahi-daemon")
    svc = os.path.join(lab.dir, "services")
    os.mkdir(svc)
    shutil.copy(os.path.join(FILES, "dots-signal-udp.service"), svc)
    conf = os.path.join(lab.dir, "avahi-daemon.conf")
    text = open(os.path.join(FILES, "avahi-daemon.conf")).read()
    text = text.replace("[server]\n", "[server]\nallow-interfaces=%s\n" % lab.vs)
    open(conf, "w").write(text)
    rundir = os.path.join(lab.dir, "avahi-run")
    os.mkdir(rundir)
    # ip netns exec gives a private mount namespace: the pid file and the
    # service directory are mounted over there, invisible to the host.
    script = ("mount --bind %s /run/avahi-daemon 2>/dev/null || "
              "(mkdir -p /run/avahi-daemon && mount --bind %s /run/avahi-daemon); "
              "mount --bind %s /etc/avahi/services && "
              "exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f %s" % (rundir, rundir, svc, conf))
    lab.start(["sh", "-c", script], ready=lambda: "Server startup complete" in
              open(os.path.join(lab.dir, "sh.out")).read(), wait=15)
    deadline = time.time() + 15
    out = None
    while time.time() < deadline:
        out = lab.discover("-6", "-m", "mdns", "--timeout", "2000")
        if len(out["servers"]) >= 2:
            break
        time.sleep(1)
    assert ("signal.udp", 4646) in [(s["transport"], s["port"]) for s in out["servers"]], out
    assert ("data.tcp", 8443) in [(s["transport"], s["port"]) for s in out["servers"]], out
    for s in out["servers"]:
        assert s["method"] == "mdns"
        assert s["reference_identifier"] == "dotsgw.local"
        assert s["address"].startswith("fd00:d57:d0::1") or s["address"].startswith("fe80")
    out4 = lab.discover("-4", "-m", "mdns", "--timeout", "2000")
    assert ("signal.udp", SRV4, 4646) in [(s["transport"], s["address"], s["port"]) for s in out4["servers"]], out4


# ---- DHCPv4 against Kea ----

def kea_env(lab):
    env = dict(os.environ, KEA_PIDFILE_DIR=lab.dir, KEA_LOCKFILE_DIR=lab.dir)
    return ["env"] + ["%s=%s" % (k, env[k]) for k in ("KEA_PIDFILE_DIR", "KEA_LOCKFILE_DIR")]


def test_dhcp4_kea(lab):
    need("kea-dhcp4")
    start_nsd(lab)
    conf = fill("kea-dhcp4.json.in", lab, IFACE=lab.vs)
    lab.start(kea_env(lab) + ["kea-dhcp4", "-c", conf],
              ready=lambda: os.path.exists(os.path.join(lab.dir, "kea4.sock")), wait=10)
    time.sleep(0.5)
    out = lab.discover("-4", "-m", "dhcp", "-m", "s-naptr", "--dns-server", SRV6)
    dhcp = rows(out, "dhcp")
    # Name and addresses both came: the name is the identifier, the addresses are used;
    # 127.0.0.1 is discarded (RFC 8973 §5.2.3).
    assert dhcp == [
        ("signal.udp", "192.0.2.20", 4646, "dots.example.net"),
        ("signal.tcp", "192.0.2.20", 4646, "dots.example.net"),
        ("data.tcp", "192.0.2.20", 443, "dots.example.net"),
        ("signal.udp", "192.0.2.21", 4646, "dots.example.net"),
        ("signal.tcp", "192.0.2.21", 4646, "dots.example.net"),
        ("data.tcp", "192.0.2.21", 443, "dots.example.net"),
    ]
    assert out["counters"]["dhcp_discarded_address"] == 1
    # The access domain (213) from Kea fed S-NAPTR, whose servers come after DHCP's.
    assert rows(out, "s-naptr")[0] == ("signal.udp", "192.0.2.10", 5000, "example.net")
    assert [s["order"] for s in out["servers"]] == list(range(1, len(out["servers"]) + 1))


# ---- DHCPv6 against Kea ----

def start_kea6(lab, ri, addrs):
    need("kea-dhcp6")
    opt = ('{ "name": "v6-dots-address", "data": "%s" },' % addrs) if addrs else ""
    conf = fill("kea-dhcp6.json.in", lab, IFACE=lab.vs, RI6=ri, ADDR6OPT=opt)
    lab.start(kea_env(lab) + ["kea-dhcp6", "-c", conf],
              ready=lambda: os.path.exists(os.path.join(lab.dir, "kea6.sock")), wait=10)
    time.sleep(0.5)


def test_dhcp6_kea_both(lab):
    start_kea6(lab, "dots.example.net.", "fd00:d57:d0::20, ff02::1, fd00:d57:d0::21")
    out = lab.discover("-6", "-m", "dhcp")
    assert [r[:3] for r in rows(out)] == [
        ("signal.udp", "fd00:d57:d0::20", 4646), ("signal.tcp", "fd00:d57:d0::20", 4646),
        ("data.tcp", "fd00:d57:d0::20", 443), ("signal.udp", "fd00:d57:d0::21", 4646),
        ("signal.tcp", "fd00:d57:d0::21", 4646), ("data.tcp", "fd00:d57:d0::21", 443),
    ]
    assert {r[3] for r in rows(out)} == {"dots.example.net"}
    assert out["counters"]["dhcp_discarded_address"] == 1
    assert out["counters"]["d6_replies"] == 1


def test_dhcp6_kea_name_only(lab):
    start_nsd(lab)
    start_kea6(lab, "dots.example.net.", None)
    out = lab.discover("-6", "-m", "dhcp", "--dns-server", SRV6)
    # A name alone is resolved (AAAA) and is also the reference identifier.
    assert rows(out) == [
        ("signal.udp", "fd00:d57:d0::d", 4646, "dots.example.net"),
        ("signal.tcp", "fd00:d57:d0::d", 4646, "dots.example.net"),
        ("data.tcp", "fd00:d57:d0::d", 443, "dots.example.net"),
    ]


def test_dhcp6_no_server_bounded(lab):
    t0 = time.time()
    out = lab.discover("-6", "-m", "dhcp", "--timeout", "1500")
    assert out["servers"] == []
    assert out["counters"]["d6_timeouts"] == 1
    assert out["counters"]["d6_sent"] >= 2  # retransmitted after 1 s
    assert time.time() - t0 < 6


# ---- malformed answers from scapy ----

SCAPY_D6 = r'''
import socket, sys
from scapy.layers.dhcp6 import DHCP6_Reply, DHCP6OptServerId, DHCP6OptClientId, DUID_LL
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.bind(("::", 547))
ifi = socket.if_nametoindex(sys.argv[1])
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, "ff02::1:2") + ifi.to_bytes(4, "little"))
s.settimeout(20)
data, peer = s.recvfrom(2048)
xid = data[1:4]
# 142 with 15 bytes (not 16N), 141 with a compression pointer, then a good 57.
bad = (b"\x00\x8e\x00\x0f" + b"\x20\x01" * 7 + b"\x01"
       + b"\x00\x8d\x00\x02\xc0\x0c"
       + b"\x00\x39\x00\x0d\x07example\x03net\x00")
rep = bytes(DHCP6_Reply(trid=int.from_bytes(xid, "big")) / DHCP6OptServerId(duid=DUID_LL(lladdr="02:00:00:00:00:01"))) + bad
s.sendto(rep, peer)
print("sent", flush=True)
'''


def test_dhcp6_malformed_scapy(lab):
    pytest.importorskip("scapy")
    script = os.path.join(lab.dir, "bad_d6.py")
    open(script, "w").write(SCAPY_D6)
    lab.start(["/usr/bin/python3", script, lab.vs])
    time.sleep(1.5)
    out = lab.discover("-6", "-m", "dhcp", "-m", "s-naptr", "--dns-server", SRV6 + "@5399", "--timeout", "800")
    c = out["counters"]
    assert c["d6_replies"] == 1
    assert c["dhcp_bad_address"] == 1
    assert c["dhcp_bad_ri"] == 1
    assert rows(out, "dhcp") == []
    # The well-formed access domain in the same Reply was still used.
    assert any("example.net NAPTR" in e["text"] for e in out["events"]), out["events"]


SCAPY_DNS = r'''
import socket, sys
from scapy.layers.dns import DNS, DNSQR, DNSRR
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
s.settimeout(20)
for _ in range(8):
    data, peer = s.recvfrom(2048)
    q = DNS(data)
    # A NAPTR answer whose rdata is cut short (rdlen 3): malformed.
    ans = DNS(id=q.id, qr=1, aa=1, qd=q.qd, an=DNSRR(rrname=q.qd.qname, type=35, rdata=b"\x00\x64\x00"))
    s.sendto(bytes(ans), peer)
'''


def test_dns_malformed_scapy(lab):
    pytest.importorskip("scapy")
    script = os.path.join(lab.dir, "bad_dns.py")
    open(script, "w").write(SCAPY_DNS)
    lab.start(["/usr/bin/python3", script, SRV6])
    time.sleep(1.5)
    out = lab.discover("-6", "-m", "s-naptr", "--domain", "example.net", "--dns-server", SRV6, "--timeout", "1000")
    assert out["servers"] == []
    assert out["counters"]["dns_bad_answer"] + out["counters"]["dns_servfail"] >= 1
    assert any("malformed" in e["text"] or "Misformatted" in e["text"] for e in out["events"]), out["events"]


def test_dhcp4_discover_kea(lab):
    """Without an IPv4 address the client sends DHCPDISCOVER and reads the OFFER."""
    need("kea-dhcp4")
    lab.ns(lab.cli, "ip", "addr", "flush", "dev", lab.vc, "scope", "global", "to", CLI4 + "/32")
    conf = fill("kea-dhcp4.json.in", lab, IFACE=lab.vs)
    lab.start(kea_env(lab) + ["kea-dhcp4", "-c", conf],
              ready=lambda: os.path.exists(os.path.join(lab.dir, "kea4.sock")), wait=10)
    time.sleep(0.5)
    out = lab.discover("-4", "-m", "dhcp", "--timeout", "3000")
    assert any("DHCPOFFER" in e["text"] and "DHCPDISCOVER" in e["text"] for e in out["events"]), out
    assert [r[1] for r in rows(out, "dhcp")][:1] == ["192.0.2.20"]

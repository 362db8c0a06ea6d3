"""lw4o6 (RFC 7596) lwB4s against the lab with a PSID pool (scripts/lab up --access dhcpv6
--portset psid, DESIGN §8): dstmd answers an ORO asking for OPTION_S46_CONT_LW (96) with the
RFC 7598 container (checked byte for byte against what scapy-built Solicit and Request get),
gives the lwB4 an IPv6 address of fd00:d57::1000/116 in an IA_NA and binds the IPv4 address and
PSID (offset 6, length 6) to it at the TEP. A real lwB4, OpenWrt's odhcp6c (built offline from
../shared/peers/odhcp6c), gets the same configuration in its state script's LW4O6 variable; 4in6
packets built in its namespace from its assigned address cross the TEP when their source port
(or ICMP identifier) is in its set, and are dropped and counted (drop_port_outside_set) when not.
dstm-client as an lwB4 carries TCP and UDP through its port translation; leases are revoked and
released like any, and survive restarts of the TEP and of dstmd with their sets.

The lwB4s are namespaces of their own ("<lab>-b1" … "<lab>-b4") plugged into the bridge the way
DESIGN §8 allows; the test removes them."""

import ipaddress
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab import POOL, TEP6, V44, Lab  # noqa: E402

PY = "/usr/bin/python3"  # the one with scapy (python3-scapy)
LW6POOL = ipaddress.ip_network("fd00:d57::1000/116")


def find_odhcp6c_build():
    """../shared/peers/odhcp6c/build.sh beside the tree (or $ODHCP6C_BUILD_SH)."""
    if os.environ.get("ODHCP6C_BUILD_SH"):
        return os.environ["ODHCP6C_BUILD_SH"]
    d = os.path.dirname(os.path.abspath(__file__))
    for _ in range(6):
        d = os.path.dirname(d)
        p = os.path.join(d, "shared", "peers", "odhcp6c", "build.sh")
        if os.path.exists(p):
            return p
    return "/work/shared/peers/odhcp6c/build.sh"


ODHCP6C_BUILD = find_odhcp6c_build()

# Run in an lwB4's namespace: DHCPv6 from the link-local address, the reply's options raw.
DHCP_SCRIPT = r"""
import json, socket, struct, sys, time
from scapy.layers.dhcp6 import (DHCP6_Solicit, DHCP6_Request, DHCP6OptClientId, DHCP6OptServerId,
    DHCP6OptOptReq, DHCP6OptIA_NA, DHCP6OptElapsedTime, DUID_LL)
iface, mac = sys.argv[1], bytes.fromhex(sys.argv[2])
idx = socket.if_nametoindex(iface)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 546, 0, idx))
s.settimeout(3)
cid = DHCP6OptClientId(duid=DUID_LL(lladdr=":".join("%02x" % b for b in mac)))

def opts(b):
    out, i = [], 4
    while i + 4 <= len(b):
        code, n = struct.unpack("!HH", b[i:i + 4])
        out.append((code, b[i + 4:i + 4 + n].hex()))
        i += 4 + n
    return out

def ask(msg):
    for _ in range(3):
        s.sendto(bytes(msg), ("ff02::1:2", 547, 0, idx))
        try:
            return s.recvfrom(4096)[0]
        except socket.timeout:
            pass
    raise SystemExit("no answer")

sol = DHCP6_Solicit(trid=0x1234) / cid / DHCP6OptElapsedTime() / \
    DHCP6OptOptReq(reqopts=[96, 23]) / DHCP6OptIA_NA(iaid=0x77)
adv = ask(sol)
sid = [bytes.fromhex(v) for c, v in opts(adv) if c == 2][0]
req = DHCP6_Request(trid=0x1235) / cid / DHCP6OptServerId(duid=sid) / DHCP6OptElapsedTime() / \
    DHCP6OptOptReq(reqopts=[96, 23]) / DHCP6OptIA_NA(iaid=0x77)
rep = ask(req)
print(json.dumps({"advertise": [adv[0], opts(adv)], "reply": [rep[0], opts(rep)]}))
"""

# Run in an lwB4's namespace: send one inner IPv4 packet through the softwire from the bound
# address with a raw IPPROTO_IPIP socket (DESIGN §8), print what comes back in time.
SEND_SCRIPT = r"""
import json, socket, sys
from scapy.layers.inet import IP, UDP, TCP, ICMP
src6, v4, dst4, proto, sport, dport = sys.argv[1:7]
sport, dport = int(sport), int(dport)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
s.bind((src6, 0))
s.settimeout(2)
l4 = {"udp": UDP(sport=sport, dport=dport) / b"lw4o6 says hello",
      "tcp": TCP(sport=sport, dport=dport, flags="S", seq=1000),
      "icmp": ICMP(type=8, id=sport, seq=1) / b"ping"}[proto]
pkt = IP(src=v4, dst=dst4, ttl=64) / l4
s.sendto(bytes(pkt), (sys.argv[7], 0))
got = []
try:
    while True:
        b, a = s.recvfrom(65535)
        p = IP(b)
        got.append({"from6": a[0], "src": p.src, "dst": p.dst, "summary": p.summary(),
                    "dport": getattr(p.payload, "dport", None),
                    "flags": str(getattr(p.payload, "flags", "")),
                    "id": getattr(p.payload, "id", None),
                    "load": bytes(p.payload.payload).hex() if proto == "udp" else ""})
except socket.timeout:
    pass
print(json.dumps(got))
"""

UDP_ECHO = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7))
while True:
    b, a = s.recvfrom(65535)
    s.sendto(b, a)
"""


def psid_ports(psid, n=3):
    """Some ports of PSID `psid` (offset 6, length 6: i 1..63, j 0..15)."""
    return [(i << 10) | (psid << 4) | j for i, j in ((1, 0), (17, 9), (63, 15))][:n]


class LwB4:
    """A namespace plugged into the lab's bridge, without an address until one is given."""

    def __init__(self, lab, node):
        self.lab, self.node = lab, node
        self.ns = lab.netns(node)
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        self.sh("ip netns add %s" % self.ns)
        self.x("sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0")
        self.sh("ip -n %s link add %s type veth peer name eth0 netns %s"
                % (lab.netns("sw"), node, self.ns))
        self.sh("ip -n %s link set %s master dstm6 up" % (lab.netns("sw"), node))
        self.x("ip link set lo up")
        self.x("ip link set eth0 up")
        self.x("ethtool -K eth0 gro off")
        mac = self.x("cat /sys/class/net/eth0/address").stdout.strip()
        self.mac = mac.replace(":", "")
        time.sleep(0.5)

    @staticmethod
    def sh(cmd):
        return subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def x(self, cmd, check=True, timeout=60):
        r = subprocess.run(["ip", "netns", "exec", self.ns, "sh", "-c", cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("%s: %s: %s" % (self.node, cmd, r.stderr))
        return r

    def py(self, script, *args, timeout=60):
        r = subprocess.run(["ip", "netns", "exec", self.ns, PY, "-c", script, *map(str, args)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        assert r.returncode == 0, "%s: %s" % (self.node, r.stderr)
        return json.loads(r.stdout)

    def send(self, src6, v4, proto, sport, dport):
        return self.py(SEND_SCRIPT, src6, v4, V44, proto, sport, dport, TEP6)

    def remove(self):
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def lwlab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    lab = Lab()
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    echo = None
    try:
        # A short lease: odhcp6c renews at T1 (30 s) while the module runs.
        lab.up(access="dhcpv6", clients=1, portset="psid", lifetime=60)
        echo = subprocess.Popen(["ip", "netns", "exec", lab.netns("v4"), PY, "-c", UDP_ECHO],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        yield lab
    finally:
        if echo:
            echo.kill()
            echo.wait()
        for node in ("b1", "b2", "b3", "b4", "b5"):
            subprocess.run(["ip", "netns", "del", lab.netns(node)], stderr=subprocess.DEVNULL)
        lab.down()


def expected_container(v4, v6, psid):
    """OPTION_S46_CONT_LW as RFC 7598 §4 lays it out, built here independently of dstmd."""
    br = struct.pack("!HH", 90, 16) + ipaddress.ip_address(TEP6).packed
    pp = struct.pack("!HHBBH", 93, 4, 6, 6, psid << 10)  # offset 6, PSID length 6, left-aligned
    bind_body = ipaddress.ip_address(v4).packed + bytes([128]) + ipaddress.ip_address(v6).packed + pp
    bind = struct.pack("!HH", 92, len(bind_body)) + bind_body
    return (br + bind).hex()


def ia_na_address(opts_list):
    body = bytes.fromhex([v for c, v in opts_list if c == 3][0])
    i = 12
    while i + 4 <= len(body):
        code, n = struct.unpack("!HH", body[i:i + 4])
        if code == 5:
            return str(ipaddress.ip_address(body[i + 4:i + 20]))
        i += 4 + n
    return None


def lease_of(lab, v6):
    for lease in lab.ctl("srv", "leases"):
        if lease["ipv6"] == v6 and lease["state"] == "active":
            return lease
    return None


def binding_of(lab, v6):
    for b in lab.ctl("tep", "bindings"):
        if b["ipv6"] == v6:
            return b
    return None


def counters(lab):
    return lab.ctl("tep", "counters")


def test_scapy_solicit_request_get_the_container(lwlab):
    pools = {p["name"]: p for p in lwlab.ctl("srv", "pools")}
    assert (pools["lab"]["psid_offset"], pools["lab"]["psid_length"]) == (6, 6), pools
    assert pools["lab"]["size"] == 64 * (254 - 1 - 63), pools  # 192.0.2.2-191: 190 addresses
    b1 = LwB4(lwlab, "b1")
    got = b1.py(DHCP_SCRIPT, "eth0", b1.mac)
    adv_type, adv = got["advertise"]
    rep_type, rep = got["reply"]
    assert adv_type == 2 and rep_type == 7
    v6 = ia_na_address(rep)
    assert v6 and ipaddress.ip_address(v6) in LW6POOL, rep
    assert ia_na_address(adv) == v6
    lease = lease_of(lwlab, v6)
    assert lease, lwlab.ctl("srv", "leases")
    assert ipaddress.ip_address(lease["ipv4"]) in ipaddress.ip_network(POOL)
    assert lease["psid_offset"] == 6 and lease["psid_length"] == 6
    psid = lease["psid"]
    want = expected_container(lease["ipv4"], v6, psid)
    # Only what the ORO asked for, exactly as RFC 7598 lays it out, in both messages.
    assert [v for c, v in adv if c == 96] == [want]
    assert [v for c, v in rep if c == 96] == [want]
    # The binding is made from the address the lwB4 will use (RFC 7596 §5.1).
    b = binding_of(lwlab, v6)
    assert b and b["ipv4"] == lease["ipv4"], lwlab.ctl("tep", "bindings")
    assert (b["psid_offset"], b["psid_length"], b["psid"]) == (6, 6, psid)
    # dstmctl's table shows the set's columns beside the ranges' (rows differ).
    table = lwlab.exec("tep", "dstmctl", "bindings", check=True).stdout.splitlines()
    assert all(k in table[0].split() for k in ("port_lo", "psid_offset", "psid_length", "psid"))
    # Revoked like any lease: named by its address and a port of its set.
    lwlab.ctl("srv", "revoke", address=lease["ipv4"], port=psid_ports(psid)[1])
    deadline = time.time() + 10
    while time.time() < deadline and binding_of(lwlab, v6):
        time.sleep(0.2)
    assert binding_of(lwlab, v6) is None
    assert lease_of(lwlab, v6) is None
    b1.remove()


def odhcp6c():
    if not os.path.exists(ODHCP6C_BUILD):
        pytest.skip("odhcp6c sources are not there (%s)" % ODHCP6C_BUILD)
    if not all(shutil.which(t) for t in ("gcc", "cmake", "make", "xz")):
        pytest.skip("building odhcp6c needs gcc, cmake, make, xz")
    r = subprocess.run(["bash", ODHCP6C_BUILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def parse_lw4o6(value):
    """odhcp6c's LW4O6 variable: one comma-separated rule per V4V6BIND, br= per S46_BR."""
    kv = {}
    for part in value.replace(" ", ",").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            kv.setdefault(k, v)
    return kv


def test_odhcp6c_gets_its_softwire_and_traffic_crosses_the_tep(lwlab, tmp_path):
    binary = odhcp6c()
    b2 = LwB4(lwlab, "b2")
    script = tmp_path / "state.sh"
    script.write_text("#!/bin/sh\nenv > %s/env.$2\necho $2 >> %s/states\n"
                      % (tmp_path, tmp_path))
    script.chmod(0o755)
    pidfile = tmp_path / "odhcp6c.pid"
    proc = subprocess.Popen(["ip", "netns", "exec", b2.ns, "env", "-i", binary, "-e", "-l", "7",
                             "-r", "96", "-t", "20", "-p", str(pidfile), "-s", str(script),
                             "eth0"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        env_file = tmp_path / "env.bound"
        # odhcp6c waits for router advertisements (~10 s) before it calls the script.
        deadline = time.time() + 60
        while time.time() < deadline and not env_file.exists():
            time.sleep(0.5)
        assert env_file.exists(), "odhcp6c never called its script with 'bound'"
        t_bound = time.time()
        time.sleep(0.3)
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                   if "=" in line)
        v6 = env["ADDRESSES"].split(",")[0].split("/")[0]
        assert ipaddress.ip_address(v6) in LW6POOL, env["ADDRESSES"]
        lw = parse_lw4o6(env["LW4O6"])
        lease = lease_of(lwlab, v6)
        assert lease, lwlab.ctl("srv", "leases")
        psid = lease["psid"]
        assert lw["type"] == "lw4o6"
        assert lw["br"] == TEP6
        assert lw["ipv4prefix"] == lease["ipv4"] and lw["prefix4len"] == "32"
        assert lw["ipv6prefix"] == v6 and lw["prefix6len"] == "128"
        assert (lw["offset"], lw["psidlen"], lw["psid"]) == ("6", "6", str(psid << 10))

        # The lwB4 builds its softwire on its IA_NA address (RFC 7596 §5.1).
        b2.x("ip addr add %s/64 dev eth0 nodad" % v6)
        v4 = lease["ipv4"]
        before = counters(lwlab)
        inside = psid_ports(psid)
        for port in inside:
            got = b2.send(v6, v4, "udp", port, 7)
            assert [g for g in got if g["src"] == V44 and g["dport"] == port
                    and g["load"] == b"lw4o6 says hello".hex()], (port, got)
        # TCP to v4's HTTP server: the SYN-ACK comes back through the softwire.
        got = b2.send(v6, v4, "tcp", inside[1] + 1, 80)
        assert [g for g in got if g["src"] == V44 and "S" in g["flags"] and "A" in g["flags"]], got
        # An echo request whose identifier is in the set.
        got = b2.send(v6, v4, "icmp", inside[2], 0)
        assert [g for g in got if g["src"] == V44 and g["id"] == inside[2]], got

        # Outside the set: the neighbour's PSID, the excluded ports 0-1023, and an
        # identifier outside: each dropped and counted, nothing comes back.
        other = (psid + 1) % 64
        outside = [("udp", psid_ports(other)[0]), ("udp", 80 | psid << 4), ("tcp", 900),
                   ("icmp", psid_ports(other)[1])]
        for proto, port in outside:
            got = b2.send(v6, v4, proto, port, 7 if proto == "udp" else 80)
            # (v4 may still retransmit the SYN-ACK of the in-set SYN above.)
            assert [g for g in got if port in (g["dport"], g["id"])] == [], (proto, port, got)
        after = counters(lwlab)
        assert after["drop_port_outside_set"] - before.get("drop_port_outside_set", 0) == len(outside)
        assert after["decap_pkts"] - before["decap_pkts"] == len(inside) + 2
        b = binding_of(lwlab, v6)
        assert b["pkts_in"] >= len(inside) + 2 and b["pkts_out"] >= len(inside) + 2

        # Renewed like any lease: odhcp6c renews at T1 (30 s after the Reply, which came
        # about 10 s before "bound") from its link-local address. Without a renewal the
        # lease would have under 25 s left 35 s after "bound".
        while time.time() < t_bound + 35:
            time.sleep(1)
        deadline = time.time() + 30
        while time.time() < deadline and lease_of(lwlab, v6)["expires_in"] <= 40:
            time.sleep(1)
        again = lease_of(lwlab, v6)
        assert again and again["ipv4"] == v4 and again["psid"] == psid
        assert again["expires_in"] > 40, again
        assert lwlab.ctl("srv", "counters")["dhcp6_rx_renew"] >= 1
        assert binding_of(lwlab, v6)

        # Released like any lease: odhcp6c sends Release when stopped.
        proc.terminate()
        proc.wait(timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline and binding_of(lwlab, v6):
            time.sleep(0.2)
        assert binding_of(lwlab, v6) is None
        assert lease_of(lwlab, v6) is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        b2.remove()


UDP_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for i in range(3):
    s.sendto(b"from the lwB4 %d" % i, (sys.argv[1], 7))
    try:
        print(s.recvfrom(2048)[0].decode())
        break
    except socket.timeout:
        pass
"""


def test_dstm_client_as_lwb4_carries_tcp_and_udp(lwlab, tmp_path):
    """dstm-client with "lw4o6": true gets the RFC 7598 options, builds its softwire on the
    IA_NA address and translates its host's ports into its set: TCP (v4's HTTP server) and UDP
    (an echo) cross the TEP, and the TEP drops nothing as outside the set."""
    b3 = LwB4(lwlab, "b3")
    b3.x("ip addr add fd00:d57::33/64 dev eth0 nodad")
    sock = str(tmp_path / "client.sock")
    cfg = {"access": "dhcpv6", "lw4o6": True, "ipv6": "fd00:d57::33", "interface": "dstm0",
           "mode": "always-on", "auth": {"mechanism": "ANONYMOUS"}, "routes": ["0.0.0.0/0"],
           "control": sock}
    path = tmp_path / "b3.json"
    path.write_text(json.dumps(cfg))
    path.chmod(0o644)
    tmp_path.chmod(0o755)
    client = os.path.join(lwlab.build, "src/client/dstm-client")
    dstmctl = os.path.join(lwlab.build, "src/ctl/dstmctl")
    log = open(tmp_path / "b3.log", "w")
    proc = subprocess.Popen(["ip", "netns", "exec", b3.ns, client, "-d", "-c", str(path)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def ctl(cmd):
        r = subprocess.run([dstmctl, "-s", sock, "--json", cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=10)
        return json.loads(r.stdout) if r.returncode == 0 else None

    try:
        deadline = time.time() + 30
        st = None
        while time.time() < deadline:
            st = ctl("status")
            if st and st.get("state") == "bound":
                break
            assert proc.poll() is None, (tmp_path / "b3.log").read_text()
            time.sleep(0.3)
        assert st and st["state"] == "bound", (st, (tmp_path / "b3.log").read_text())
        v6 = st["ipv6"]
        assert ipaddress.ip_address(v6) in LW6POOL, st
        lease = lease_of(lwlab, v6)
        assert lease and lease["ipv4"] == st["ipv4"]
        assert (st["psid_offset"], st["psid_length"], st["psid"]) == (6, 6, lease["psid"])
        before = counters(lwlab)

        r = b3.x("curl -sf --max-time 10 http://%s/" % V44)
        assert "IPv4-only host" in r.stdout
        r = b3.x("curl -sf --max-time 20 -o /dev/null -w '%%{size_download}' http://%s/1M.bin"
                 % V44, timeout=60)
        assert r.stdout == "1048576"
        out = subprocess.run(["ip", "netns", "exec", b3.ns, PY, "-c", UDP_CLIENT, V44],
                             stdout=subprocess.PIPE, text=True, timeout=30).stdout
        assert out.startswith("from the lwB4"), out

        after = counters(lwlab)
        assert after["drop_port_outside_set"] == before["drop_port_outside_set"]
        assert after["decap_pkts"] - before["decap_pkts"] >= 10
        c = ctl("counters")
        assert c["lw4o6_translated_out"] >= 10 and c["lw4o6_translated_in"] >= 10, c
        assert c["lw4o6_flows_kept"] + c["lw4o6_flows_mapped"] >= 3, c
        assert c["drop_port_set_full"] == 0
        print("lwB4 dstm-client:", st, {k: v for k, v in c.items() if k.startswith("lw4o6")})
        b = binding_of(lwlab, v6)
        assert b and b["pkts_in"] >= 10 and b["pkts_out"] >= 10, b
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        b3.remove()


def restart_node(lab, node, prog):
    """SIGKILL the node's daemon and start it again as scripts/lab does."""
    import signal
    with open(lab.path(node, node + ".pid")) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline and os.path.exists("/proc/%d" % pid):
        time.sleep(0.1)
    log = open(lab.path(node, node + ".log"), "a")
    p = subprocess.Popen(["ip", "netns", "exec", lab.netns(node), os.path.join(lab.build, prog),
                          "-d", "-c", lab.path(node, node + ".json")],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    with open(lab.path(node, node + ".pid"), "w") as f:
        f.write(str(p.pid))
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            lab.ctl(node, "status")
            return
        except Exception:
            time.sleep(0.2)
    raise AssertionError(node + " did not come back")


def test_restarts_keep_the_port_set(lwlab):
    """A killed TEP gets the PSID binding again from dstmd; a killed dstmd reloads the lease
    with its set, pushes it again, and gives the lwB4 the same IPv6 address when it asks."""
    b4 = LwB4(lwlab, "b4")
    got = b4.py(DHCP_SCRIPT, "eth0", b4.mac)
    v6 = ia_na_address(got["reply"][1])
    lease = lease_of(lwlab, v6)
    want = (lease["ipv4"], 6, 6, lease["psid"])

    def bound():
        b = binding_of(lwlab, v6)
        return b and (b["ipv4"], b["psid_offset"], b["psid_length"], b["psid"])

    assert bound() == want
    restart_node(lwlab, "tep", "src/tep/dstm-tep")
    deadline = time.time() + 15
    while time.time() < deadline and bound() != want:
        time.sleep(0.3)
    assert bound() == want
    restart_node(lwlab, "srv", "src/dstmd/dstmd")
    lease2 = lease_of(lwlab, v6)
    assert lease2 and (lease2["ipv4"], lease2["psid"]) == (lease["ipv4"], lease["psid"])
    assert lease2["psid_offset"] == 6 and lease2["psid_length"] == 6
    # The lwB4 asks again (same DUID and IAID): the same address and set.
    time.sleep(1)
    got = b4.py(DHCP_SCRIPT, "eth0", b4.mac)
    assert ia_na_address(got["reply"][1]) == v6
    assert [v for c, v in got["reply"][1] if c == 96] == [
        expected_container(lease["ipv4"], v6, lease["psid"])]
    assert bound() == want
    b4.remove()


def test_address_only_lw4o6(lwlab):
    """PSID length 0 (RFC 7596 §5.1 with a whole address): dstmd restarted with "lw4o6"
    pointing at the DSTM pool of whole addresses (the section needs a restart: a reload that
    changes it is refused); the container then carries no OPTION_S46_PORTPARAMS, the TEP binds
    the whole address and any port crosses."""
    import signal
    path = lwlab.path("srv", "srv.json")
    with open(path) as f:
        text = f.read()
    cfg = json.loads(text)
    cfg["lw4o6"]["pool"] = "dstm"
    b5 = None
    try:
        with open(path, "w") as f:
            json.dump(cfg, f)
        mark = len(lwlab.log("srv"))
        with open(lwlab.path("srv", "srv.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "reload refused" not in lwlab.log("srv")[mark:]:
            time.sleep(0.2)
        assert "reload refused" in lwlab.log("srv")[mark:]
        restart_node(lwlab, "srv", "src/dstmd/dstmd")
        b5 = LwB4(lwlab, "b5")
        got = b5.py(DHCP_SCRIPT, "eth0", b5.mac)
        v6 = ia_na_address(got["reply"][1])
        lease = lease_of(lwlab, v6)
        assert lease and lease["pool"] == "dstm" and "psid" not in lease, lease
        br = struct.pack("!HH", 90, 16) + ipaddress.ip_address(TEP6).packed
        body = ipaddress.ip_address(lease["ipv4"]).packed + bytes([128]) + \
            ipaddress.ip_address(v6).packed
        want = (br + struct.pack("!HH", 92, len(body)) + body).hex()
        assert [v for c, v in got["reply"][1] if c == 96] == [want]
        b = binding_of(lwlab, v6)
        assert (b["port_lo"], b["port_hi"]) == (0, 65535), b
        b5.x("ip addr add %s/64 dev eth0 nodad" % v6)
        for port in (80, 40000):
            got = b5.send(v6, lease["ipv4"], "udp", port, 7)
            assert [g for g in got if g["src"] == V44 and g["dport"] == port], (port, got)
    finally:
        with open(path, "w") as f:
            f.write(text)
        if b5:
            b5.remove()

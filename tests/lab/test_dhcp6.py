"""Conformance tests of dstmd's DHCPv6 server, driven by scapy (an
independent DHCPv6 implementation builds the client messages): every
message type, both DSTM forms (seed 001 appendix A IA_DSTM with the TEP
option; seed 002 §6.1 Global IPv4 Address + IA_NA), Rapid Commit, relays,
status codes, the DOTS options, delayed authentication and malformed input,
with the drop counters asserted. dstmd runs in a namespace of its own,
the client in another, joined by a veth pair (ULA addresses only)."""

import ctypes
import hashlib
import hmac
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

scapy = pytest.importorskip("scapy.layers.dhcp6")
from scapy.layers.dhcp6 import (  # noqa: E402
    DHCP6_Confirm, DHCP6_Decline, DHCP6_InfoRequest, DHCP6_Rebind, DHCP6_RelayForward,
    DHCP6_Release, DHCP6_Renew, DHCP6_Request, DHCP6_Solicit, DHCP6OptClientId,
    DHCP6OptElapsedTime, DHCP6OptIA_NA, DHCP6OptIAAddress, DHCP6OptIfaceId, DHCP6OptOptReq,
    DHCP6OptRapidCommit, DHCP6OptReconfAccept, DHCP6OptRelayMsg, DUID_LL)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DSTM_BUILD", os.path.join(ROOT, "build"))
DSTMD = os.path.join(BUILD, "src/dstmd/dstmd")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(DSTMD), reason="dstmd is not built"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
]

IA_DSTM, TEP, PORTS, GLOBAL_V4 = 65001, 65002, 65003, 65004
SRV6, CLI6, TEP6 = "fd00:d6::1", "fd00:d6::11", "fd00:d6::2"
KEY_REALM, KEY_ID, KEY_SECRET = b"dstm.example", 7, b"lab-secret"
AUTH_PORT = 5547

libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def in_netns(ns, fn):
    """Run fn in a thread that entered network namespace `ns` (sockets it makes stay there)."""
    out = {}

    def run():
        fd = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            out["v"] = fn()
        except Exception as e:  # noqa: BLE001
            out["e"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["v"]


def opt(code, data=b""):
    return struct.pack("!HH", code, len(data)) + data


def mapped(v4):
    return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(v4)


def ia_body(iaid, addr=None):
    body = struct.pack("!III", iaid, 0, 0)
    if addr:
        body += opt(5, addr + struct.pack("!II", 0, 0))
    return body


def ia_dstm(iaid, v4=None):
    return opt(IA_DSTM, ia_body(iaid, mapped(v4) if v4 else None))


def options(data):
    """[(code, body)] of a run of options (raw walk, to see the unknown DSTM codes)."""
    out, i = [], 0
    while i + 4 <= len(data):
        code, n = struct.unpack("!HH", data[i:i + 4])
        out.append((code, data[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def first(opts, code):
    for c, b in opts:
        if c == code:
            return b
    return None


def status_of(opts):
    b = first(opts, 13)
    return None if b is None else struct.unpack("!H", b[:2])[0]


def ia_parse(body):
    iaid, t1, t2 = struct.unpack("!III", body[:12])
    sub = options(body[12:])
    r = {"iaid": iaid, "t1": t1, "t2": t2, "status": status_of(sub), "tep": None,
         "ports": None, "v4": None}
    a = first(sub, 5)
    if a:
        r["addr"] = a[:16]
        r["pref"], r["valid"] = struct.unpack("!II", a[16:24])
        if a[:12] == b"\0" * 10 + b"\xff\xff":
            r["v4"] = socket.inet_ntoa(a[12:16])
    t = first(sub, TEP)
    if t:
        r["tep"] = socket.inet_ntop(socket.AF_INET6, t)
    p = first(sub, PORTS)
    if p:
        r["ports"] = struct.unpack("!HH", p)
    return r


class Client:
    """A DHCPv6 client socket in the client namespace, messages built by scapy."""

    def __init__(self, ns, ifname, port=547):
        self.port = port
        self.ifindex = in_netns(ns, lambda: socket.if_nametoindex(ifname))

        def mk():
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((CLI6, 546 if port == 547 else 0))
            s.settimeout(2)
            return s
        self.s = in_netns(ns, mk)
        self.duid = bytes(DUID_LL(lladdr="02:00:00:00:00:11"))
        self.server_id = None
        self.trid = 0x100

    def clientid(self, duid=None):
        return bytes(DHCP6OptClientId(duid=DUID_LL(lladdr="02:00:00:00:00:11"))) if duid is None \
            else opt(1, duid)

    def serverid(self):
        return opt(2, self.server_id)

    def send(self, raw, dest="ff02::1:2"):
        scope = self.ifindex if dest.startswith("ff02") else 0
        for _ in range(50):  # a fresh veth takes a moment to carry (ENETUNREACH until then)
            try:
                self.s.sendto(raw, (dest, self.port, 0, scope))
                return
            except OSError as e:
                if e.errno != 101:
                    raise
                time.sleep(0.1)
        raise OSError(101, "the client's link never came up")

    def recv(self, timeout=2.0):
        self.s.settimeout(timeout)
        try:
            data, _ = self.s.recvfrom(8192)
        except socket.timeout:
            return None
        return data

    def xchg(self, cls, *opts, dest="ff02::1:2", timeout=2.0):
        self.trid += 1
        raw = bytes(cls(trid=self.trid)) + b"".join(bytes(o) for o in opts)
        self.send(raw, dest)
        return self.reply(timeout)

    def reply(self, timeout=2.0):
        data = self.recv(timeout)
        if data is None:
            return None
        r = {"type": data[0], "trid": int.from_bytes(data[1:4], "big"), "raw": data,
             "opts": options(data[4:])}
        if data[0] not in (12, 13):
            r["status"] = status_of(r["opts"])
            r["ias"] = [ia_parse(b) for c, b in r["opts"] if c in (3, IA_DSTM)]
            sid = first(r["opts"], 2)
            if sid:
                self.server_id = sid
        return r


def ctl(sock, command, args=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(json.dumps({"version": 1, "command": command, "args": args or {}}).encode() + b"\n")
    f = s.makefile("rb")
    reply = json.loads(f.readline())
    s.close()
    assert reply["ok"], reply
    return reply["result"]


@pytest.fixture(scope="module")
def lab():
    tag = "dhcp6-%d" % os.getpid()
    ns_s, ns_c = tag + "-s", tag + "-c"
    vs, vc = "d6s%d" % (os.getpid() % 100000), "d6c%d" % (os.getpid() % 100000)
    tmp = tempfile.mkdtemp(prefix="dstm-dhcp6-")
    procs = []
    try:
        sh("ip", "netns", "add", ns_s)
        sh("ip", "netns", "add", ns_c)
        sh("ip", "link", "add", vs, "netns", ns_s, "type", "veth", "peer", vc, "netns", ns_c)
        for ns, dev, a in ((ns_s, vs, SRV6), (ns_c, vc, CLI6)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", a + "/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        socks = {}
        for name, port, extra in (("main", 547, {}),
                                  ("auth", AUTH_PORT, {"require_auth": True})):
            d6 = {"interfaces": [vs], "port": port,
                  "keys": [{"realm": KEY_REALM.decode(), "key_id": KEY_ID,
                            "secret": KEY_SECRET.decode()}],
                  "dots_ri": "dots.example", "dots_address": ["2001:db8::53"],
                  "access_domain": "access.example", "limits": {"per_duid": 2, "per_64": 8},
                  # The client's address doubles as a relay's (test_relay_forward).
                  "relays": [CLI6]}
            d6.update(extra)
            cfg = {"database": os.path.join(tmp, name, "leases.db"),
                   "control": os.path.join(tmp, name, "control.sock"),
                   "lifetime": 120, "quarantine": 10,
                   "listen": [{"address": "[%s]:%d" % (SRV6, 3653 if name == "main" else 3655)}],
                   "pools": [{"name": "lab", "ranges": ["192.0.2.10-192.0.2.20"]}],
                   "teps": [{"name": "tep1", "ipv6": TEP6, "ipv4": "198.51.100.1",
                             "clients": ["fd00:d6::/32"]}],
                   "dhcpv6": d6}
            path = os.path.join(tmp, name + ".json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            log = open(os.path.join(tmp, name + ".log"), "w")
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns_s, DSTMD, "-d", "-c", path],
                                          stdout=log, stderr=log))
            socks[name] = cfg["control"]
        for _ in range(100):
            if all(os.path.exists(s) for s in socks.values()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("dstmd did not start: " + open(os.path.join(tmp, "main.log")).read())
        yield {"ns_c": ns_c, "vc": vc, "ctl": socks["main"], "ctl_auth": socks["auth"],
               "tmp": tmp}
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", ns_s], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_c], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def cli(lab):
    c = Client(lab["ns_c"], lab["vc"])
    yield c
    c.s.close()


def counters(lab, key="ctl"):
    return ctl(lab[key], "counters")


def leases(lab):
    return ctl(lab["ctl"], "leases")["leases"]  # one page (of up to 1000) is all a test has


def test_solicit_request_renew_rebind_release_ia_dstm(lab, cli):
    adv = cli.xchg(DHCP6_Solicit, cli.clientid(), DHCP6OptElapsedTime(), ia_dstm(1))
    assert adv and adv["type"] == 2
    ia = adv["ias"][0]
    assert ia["v4"] and ia["v4"].startswith("192.0.2.") and ia["tep"] == TEP6
    rep = cli.xchg(DHCP6_Request, cli.clientid(), cli.serverid(), ia_dstm(1, ia["v4"]))
    assert rep["type"] == 7
    got = rep["ias"][0]
    assert got["v4"] == ia["v4"] and got["tep"] == TEP6
    assert got["valid"] == 120 and got["t1"] == 60 and got["t2"] == 96
    ls = [l for l in leases(lab) if l.get("ipv4", l.get("v4")) == ia["v4"]]
    assert ls, leases(lab)
    assert CLI6 in json.dumps(ls[0])
    rep = cli.xchg(DHCP6_Renew, cli.clientid(), cli.serverid(), ia_dstm(1, ia["v4"]))
    assert rep["ias"][0]["v4"] == ia["v4"] and rep["ias"][0]["status"] is None
    rep = cli.xchg(DHCP6_Rebind, cli.clientid(), ia_dstm(1, ia["v4"]))
    assert rep["ias"][0]["valid"] == 120
    rep = cli.xchg(DHCP6_Confirm, cli.clientid(), ia_dstm(1, ia["v4"]))
    assert rep["status"] == 0
    rep = cli.xchg(DHCP6_Confirm, cli.clientid(), ia_dstm(1, "198.51.100.7"))
    assert rep["status"] == 4  # NotOnLink
    rep = cli.xchg(DHCP6_Release, cli.clientid(), cli.serverid(), ia_dstm(1, ia["v4"]))
    assert rep["status"] == 0
    rep = cli.xchg(DHCP6_Release, cli.clientid(), cli.serverid(), ia_dstm(1, ia["v4"]))
    assert rep["ias"][0]["status"] == 3  # NoBinding
    rep = cli.xchg(DHCP6_Renew, cli.clientid(), cli.serverid(), ia_dstm(1, ia["v4"]))
    assert rep["ias"][0]["status"] == 3


def test_rapid_commit_global_v4_form_and_decline(lab, cli):
    duid = b"\0\3\0\1\2\0\0\0\0\x22"
    rep = cli.xchg(DHCP6_Solicit, cli.clientid(duid), DHCP6OptRapidCommit(),
                   opt(GLOBAL_V4), DHCP6OptIA_NA(iaid=5))
    assert rep["type"] == 7 and first(rep["opts"], 14) is not None
    g = first(rep["opts"], GLOBAL_V4)
    assert g is not None and socket.inet_ntop(socket.AF_INET6, g) == TEP6
    ia = rep["ias"][0]
    assert ia["v4"].startswith("192.0.2.")
    # The Global IPv4 Address option comes right before its IA_NA (seed 002 §6.1).
    codes = [c for c, _ in rep["opts"]]
    assert codes.index(GLOBAL_V4) + 1 == codes.index(3)
    before = counters(lab)["dhcp6_declined"]
    rep = cli.xchg(DHCP6_Decline, cli.clientid(duid), cli.serverid(),
                   DHCP6OptIA_NA(iaid=5, ianaopts=[DHCP6OptIAAddress(
                       addr="::ffff:" + ia["v4"])]))
    assert rep["status"] == 0
    assert counters(lab)["dhcp6_declined"] == before + 1
    # A plain IA_NA (no Global IPv4 option): we give no IPv6 addresses.
    rep = cli.xchg(DHCP6_Solicit, cli.clientid(duid), DHCP6OptIA_NA(iaid=6))
    assert rep["type"] == 2 and rep["status"] == 2  # NoAddrsAvail


def test_several_ias_and_per_duid_limit(lab, cli):
    duid = b"\0\3\0\1\2\0\0\0\0\x33"
    rep = cli.xchg(DHCP6_Solicit, cli.clientid(duid), DHCP6OptRapidCommit(),
                   ia_dstm(1), ia_dstm(2), ia_dstm(3))
    sts = [i["status"] for i in rep["ias"]]
    assert sts[:2] == [None, None] and sts[2] == 2
    assert rep["ias"][0]["v4"] != rep["ias"][1]["v4"]
    assert counters(lab)["dhcp6_drop_limit"] >= 1
    cli.xchg(DHCP6_Release, cli.clientid(duid), cli.serverid(), ia_dstm(1), ia_dstm(2))


def test_use_multicast(lab, cli):
    adv = cli.xchg(DHCP6_Solicit, cli.clientid(), ia_dstm(9))
    rep = cli.xchg(DHCP6_Request, cli.clientid(), cli.serverid(), ia_dstm(9), dest=SRV6)
    assert rep["type"] == 7 and rep["status"] == 5 and adv["type"] == 2


def test_information_request_dots(lab, cli):
    rep = cli.xchg(DHCP6_InfoRequest, cli.clientid(), DHCP6OptOptReq(reqopts=[141, 142, 57]))
    assert rep["type"] == 7
    assert first(rep["opts"], 141) == b"\x04dots\x07example\x00"
    assert socket.inet_ntop(socket.AF_INET6, first(rep["opts"], 142)) == "2001:db8::53"
    assert first(rep["opts"], 57) == b"\x06access\x07example\x00"
    rep = cli.xchg(DHCP6_InfoRequest, cli.clientid())
    assert first(rep["opts"], 141) is None


def test_relay_forward(lab, cli):
    inner = bytes(DHCP6_Solicit(trid=0x4242)) + opt(1, b"\0\3\0\1\2\0\0\0\0\x44") + \
        bytes(DHCP6OptRapidCommit()) + ia_dstm(1)
    relay = DHCP6_RelayForward(hopcount=0, linkaddr="fd00:d6:1::1", peeraddr="fd00:d6:1::20") / \
        DHCP6OptIfaceId(ifaceid=b"port7") / DHCP6OptRelayMsg(message=inner)
    cli.send(bytes(relay), dest=SRV6)
    data = cli.recv()
    assert data and data[0] == 13, {k: v for k, v in counters(lab).items() if v and "dhcp6" in k}
    ro = options(data[34:])
    assert first(ro, 18) == b"port7"
    msg = first(ro, 9)
    assert msg[0] == 7 and int.from_bytes(msg[1:4], "big") == 0x4242
    ia = ia_parse(first(options(msg[4:]), IA_DSTM))
    assert ia["v4"]
    # The binding names the client's address from the relay's peer-address.
    assert any("fd00:d6:1::20" in json.dumps(l) for l in leases(lab))


@pytest.mark.parametrize("name,raw,counter", [
    ("truncated option", bytes(DHCP6_Solicit(trid=1)) + b"\x00\x01\x00\x40\x00\x03",
     "dhcp6_drop_option_length"),
    ("two client ids", bytes(DHCP6_Solicit(trid=1)) + opt(1, b"\0\3\0\1\1") * 2,
     "dhcp6_drop_duplicate_option"),
    ("no client id", bytes(DHCP6_Solicit(trid=1)) + ia_dstm(1), "dhcp6_drop_no_clientid"),
    ("TEP at top level", bytes(DHCP6_Solicit(trid=1)) + opt(1, b"\0\3\0\1\1") + opt(TEP, b"\0" * 16),
     "dhcp6_drop_misplaced_option"),
    ("server id in solicit", bytes(DHCP6_Solicit(trid=1)) + opt(1, b"\0\3\0\1\1") +
     opt(2, b"\0\3\0\1\1"), "dhcp6_drop_serverid"),
    ("reply sent to server", b"\x07\0\0\1" + opt(1, b"\0\3\0\1\1"), "dhcp6_drop_bad_type"),
    ("short", b"\x01\0", "dhcp6_drop_short"),
])
def test_malformed_dropped_and_counted(lab, cli, name, raw, counter):
    before = counters(lab)[counter]
    cli.send(raw)
    assert cli.recv(0.5) is None, name
    assert counters(lab)[counter] == before + 1, name


def test_oversized_relay_chain(lab, cli):
    msg = bytes(DHCP6_Solicit(trid=1)) + opt(1, b"\0\3\0\1\1")
    for hop in range(9):
        msg = bytes(DHCP6_RelayForward(hopcount=hop, linkaddr="::", peeraddr="fd00:d6::11") /
                    DHCP6OptRelayMsg(message=msg))
    before = counters(lab)["dhcp6_drop_relay_depth"]
    cli.send(msg, dest=SRV6)
    assert cli.recv(0.5) is None
    assert counters(lab)["dhcp6_drop_relay_depth"] == before + 1


def signed(raw, replay):
    """raw + a delayed-authentication option (RFC 3315 §21.4.1), HMAC-MD5 filled in."""
    head = struct.pack("!BBBQ", 2, 1, 0, replay) + KEY_REALM + struct.pack("!I", KEY_ID)
    msg = raw + opt(11, head + b"\0" * 16)
    mac = hmac.new(KEY_SECRET, msg, hashlib.md5).digest()
    return msg[:-16] + mac


def verify(data):
    a = first(options(data[4:]), 11)
    assert a is not None and a[0] == 2
    off = data.rindex(a) + len(a) - 16
    zero = data[:off] + b"\0" * 16 + data[off + 16:]
    return hmac.compare_digest(hmac.new(KEY_SECRET, zero, hashlib.md5).digest(), a[-16:])


def test_delayed_authentication(lab):
    c = Client(lab["ns_c"], lab["vc"], port=AUTH_PORT)
    try:
        duid = b"\0\3\0\1\2\0\0\0\0\x55"
        base = counters(lab, "ctl_auth")
        # No authentication: refused and counted.
        c.send(bytes(DHCP6_Solicit(trid=1)) + opt(1, duid) + bytes(DHCP6OptRapidCommit()) +
               ia_dstm(1))
        assert c.recv(0.5) is None
        # A Solicit asking for authentication gets a signed Advertise.
        c.send(bytes(DHCP6_Solicit(trid=2)) + opt(1, duid) +
               opt(11, struct.pack("!BBBQ", 2, 1, 0, 1)) + ia_dstm(1))
        adv = c.reply()
        assert adv and adv["type"] == 2 and verify(adv["raw"])
        # A signed Request: served, signed Reply.
        raw = bytes(DHCP6_Request(trid=3)) + opt(1, duid) + c.serverid() + ia_dstm(1)
        c.send(signed(raw, 10))
        rep = c.reply()
        assert rep and rep["type"] == 7 and rep["ias"][0]["v4"] and verify(rep["raw"])
        # Replayed counter; wrong MAC.
        c.send(signed(raw, 10))
        assert c.recv(0.5) is None
        bad = bytearray(signed(raw, 11))
        bad[-1] ^= 1
        c.send(bytes(bad))
        assert c.recv(0.5) is None
        after = counters(lab, "ctl_auth")
        assert after["dhcp6_drop_auth_missing"] == base["dhcp6_drop_auth_missing"] + 1
        assert after["dhcp6_drop_auth_replay"] == base["dhcp6_drop_auth_replay"] + 1
        assert after["dhcp6_drop_auth_bad"] == base["dhcp6_drop_auth_bad"] + 1
    finally:
        c.s.close()


def test_reconfigure_accept_gets_key(lab, cli):
    duid = b"\0\3\0\1\2\0\0\0\0\x66"
    rep = cli.xchg(DHCP6_Solicit, cli.clientid(duid), DHCP6OptRapidCommit(),
                   DHCP6OptReconfAccept(), ia_dstm(1))
    a = first(rep["opts"], 11)
    assert a is not None and a[0] == 3 and a[11] == 1 and len(a) == 28
    assert first(rep["opts"], 20) is not None


def test_revoke_sends_reconfigure(lab, cli):
    """An operator's revoke of a DHCPv6 lease sends the client a Reconfigure
    (Renew), signed with its reconfigure key (RFC 8415 §18.3.11, §20.4)."""
    duid = b"\0\3\0\1\2\0\0\0\0\x67"
    rep = cli.xchg(DHCP6_Solicit, cli.clientid(duid), DHCP6OptRapidCommit(),
                   DHCP6OptReconfAccept(), ia_dstm(1))
    v4 = rep["ias"][0]["v4"]
    key = first(rep["opts"], 11)[12:28]
    before = counters(lab)["dhcp6_reconfigure_sent"]
    ctl(lab["ctl"], "revoke", {"address": v4})
    data = cli.recv(timeout=3)
    assert data and data[0] == 10, data
    ro = options(data[4:])
    assert first(ro, 19) == bytes([5])          # Reconfigure Message: Renew
    assert first(ro, 1) == duid                  # to this client
    auth = first(ro, 11)
    assert auth[0] == 3 and auth[11] == 2        # reconfigure key protocol, HMAC-MD5 value
    import hmac
    zeroed = data.replace(auth[11 + 1:11 + 17], b"\0" * 16)
    assert hmac.new(key, zeroed, "md5").digest() == auth[12:28]
    assert counters(lab)["dhcp6_reconfigure_sent"] == before + 1



DOTS_DISCOVER = os.path.join(os.path.dirname(DSTMD), "..", "dots-discover", "dots-discover")


@pytest.mark.skipif(not os.path.exists(DOTS_DISCOVER), reason="dots-discover is not built")
def test_dots_discover_finds_the_server_dstmd_announces(lab):
    """A client of the DSTM domain discovers the DOTS server that
    dstmd announces in DHCPv6 (options 141/142), with dots-discover."""
    # dots-discover sends from the link-local address: wait for its DAD to end.
    deadline = time.time() + 5
    while time.time() < deadline:
        a = subprocess.run(["ip", "-n", lab["ns_c"], "-6", "addr", "show", "dev", lab["vc"],
                            "scope", "link"], capture_output=True, text=True).stdout
        if "inet6" in a and "tentative" not in a:
            break
        time.sleep(0.1)
    out = subprocess.run(["ip", "netns", "exec", lab["ns_c"], DOTS_DISCOVER, "-6", "-i", lab["vc"],
                          "-m", "dhcp", "-T", "3000", "--json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads(out.stdout)
    servers = res["servers"] if isinstance(res, dict) else res
    assert servers, out.stdout
    first_server = servers[0]
    assert first_server["method"] == "dhcp", first_server
    assert first_server["address"] == "2001:db8::53", first_server
    assert "dots.example" in json.dumps(first_server), first_server

"""Identity is what the server verified (DESIGN §4): attacks from an extra
host `x` (fd00:d57::66) plugged into the lab's bridge, one test each, every
one asserting that the victim's lease, its TEP binding and its traffic are
intact and that a named counter saw the attack; and the legitimate paths
(renew, rebind, release from the right address, a trusted relay, an
authenticated client that moves). DHCPv6 messages are built with scapy.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_identity.py
"""

import base64
import hashlib
import hmac
import os
import socket
import struct

import pytest

scapy = pytest.importorskip("scapy.layers.dhcp6")
from scapy.layers.dhcp6 import (  # noqa: E402
    DHCP6_Decline, DHCP6_InfoRequest, DHCP6_Rebind, DHCP6_RelayForward, DHCP6_Release,
    DHCP6_Renew, DHCP6_Request, DHCP6_Solicit, DHCP6OptElapsedTime, DHCP6OptRapidCommit,
    DHCP6OptReconfAccept, DHCP6OptRelayMsg)

from lab import SRV6, TEP6, V44, Lab, client_ipv6  # noqa: E402
from test_dhcp6 import ia_dstm, in_netns, opt, options  # noqa: E402,F401
from test_domain import bound, wait_for  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

X6 = "fd00:d57::66"   # the foreign host
XR6 = "fd00:d57::67"  # a relay the DHCPv6 lab's dstmd trusts
C1, C2 = client_ipv6(1), client_ipv6(2)
IA_DSTM = 65001
NO_BINDING = 3


def bring_up(**options):
    lab = Lab()
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(clients=2, **options)
        lab.plug("x", X6)
        yield lab
    finally:
        lab.down()


# ---- what the victim has, and that it kept it

def lease_of(lab, v6):
    ls = [l for l in lab.ctl("srv", "leases") if l["ipv6"] == v6 and l["state"] == "active"]
    return ls[0] if ls else None


def snapshot(lab, node, v6):
    bound(lab, node, timeout=15)
    l = lease_of(lab, v6)
    assert l, lab.ctl("srv", "leases")
    return {k: l[k] for k in ("identity", "ipv4", "ipv6")}


def assert_intact(lab, node, v6, before):
    """The lease, the TEP's binding and the traffic of `node` are as they were."""
    l = lease_of(lab, v6)
    assert l and {k: l[k] for k in before} == before, (before, lab.ctl("srv", "leases"))
    b = lab.ctl("tep", "bindings", ipv4=before["ipv4"])
    assert [x["ipv6"] for x in b] == [v6], b
    # Any of three (a loaded machine may lose one).
    r = lab.exec(node, "ping", "-c", "3", "-i", "0.2", "-W", "2", V44)
    assert r.returncode == 0, r.stdout + r.stderr


def no_lease_at(lab, v6):
    return not [l for l in lab.ctl("srv", "leases") if l["ipv6"] == v6 and l["state"] == "active"]


def counter(lab, name):
    return lab.ctl("srv", "counters")[name]


# ---- DHCPv6 from a host of the bridge

def ia_status(reply):
    """The status of each IA of a reply (0 when the IA carries none), and its address."""
    out = []
    for code, body in options(reply[4:]):
        if code == IA_DSTM:
            sub = options(body[12:])
            st = [struct.unpack("!H", b[:2])[0] for c, b in sub if c == 13]
            addr = [socket.inet_ntoa(b[12:16]) for c, b in sub if c == 5]
            out.append((st[0] if st else 0, addr[0] if addr else None))
    return out


class Host:
    """A DHCPv6 socket of one lab node, bound to the node's address."""

    def __init__(self, lab, node, addr):
        def mk():
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind((addr, 0))
            return s, socket.if_nametoindex("eth0")
        self.s, self.ifindex = in_netns(lab.netns(node), mk)
        self.trid = 0x4000

    def send(self, raw, dest="ff02::1:2"):
        scope = self.ifindex if dest.startswith("ff02") else 0
        self.s.sendto(raw, (dest, 547, 0, scope))

    def recv(self, timeout=2.0):
        self.s.settimeout(timeout)
        try:
            return self.s.recvfrom(8192)[0]
        except socket.timeout:
            return None

    def xchg(self, cls, *opts, dest="ff02::1:2", timeout=2.0):
        self.trid += 1
        self.send(bytes(cls(trid=self.trid)) + b"".join(bytes(o) for o in opts), dest)
        return self.recv(timeout)

    def close(self):
        self.s.close()


def dhcp6_identity(lab, v6):
    """The DUID and IAID of the client at v6, from its lease ("dhcp6:<duid>:<iaid>"): what
    an attacker reads off the wire (DUID-LL from the MAC, IAID the ifindex)."""
    _, duid, iaid = lease_of(lab, v6)["identity"].split(":")
    return bytes.fromhex(duid), int(iaid, 16)


@pytest.fixture(scope="class")
def d6lab():
    yield from bring_up(access="dhcpv6", relays=[XR6])


@pytest.fixture
def x(d6lab):
    h = Host(d6lab, "x", X6)
    r = h.xchg(DHCP6_InfoRequest, opt(1, b"\0\3\0\1\2\0\0\0\0\x66"), DHCP6OptElapsedTime())
    assert r, "dstmd does not answer x's Information-request"
    h.server_id = [b for c, b in options(r[4:]) if c == 2][0]
    yield h
    h.close()


class TestDhcpv6:
    def test_forged_rebind_request_renew_change_nothing(self, d6lab, x):
        before = snapshot(d6lab, "c1", C1)
        duid, iaid = dhcp6_identity(d6lab, C1)
        n = counter(d6lab, "dhcp6_refused_foreign")
        for cls, sid in ((DHCP6_Rebind, b""), (DHCP6_Request, opt(2, x.server_id)),
                         (DHCP6_Renew, opt(2, x.server_id))):
            r = x.xchg(cls, opt(1, duid), sid, DHCP6OptElapsedTime(),
                       ia_dstm(iaid, before["ipv4"]))
            assert r and r[0] == 7, (cls, r)
            assert ia_status(r) == [(NO_BINDING, None)], (cls, ia_status(r))
        assert counter(d6lab, "dhcp6_refused_foreign") == n + 3
        assert_intact(d6lab, "c1", C1, before)
        assert no_lease_at(d6lab, X6)

    def test_foreign_release_and_decline_change_nothing(self, d6lab, x):
        b1, b2 = snapshot(d6lab, "c1", C1), snapshot(d6lab, "c2", C2)
        n = counter(d6lab, "dhcp6_refused_foreign")
        for cls, v6, b in ((DHCP6_Release, C1, b1), (DHCP6_Decline, C2, b2)):
            duid, iaid = dhcp6_identity(d6lab, v6)
            r = x.xchg(cls, opt(1, duid), opt(2, x.server_id), DHCP6OptElapsedTime(),
                       ia_dstm(iaid, b["ipv4"]))
            assert r and ia_status(r) == [(NO_BINDING, None)], ia_status(r)
        assert counter(d6lab, "dhcp6_refused_foreign") == n + 2
        assert_intact(d6lab, "c1", C1, b1)
        assert_intact(d6lab, "c2", C2, b2)

    def test_forged_relays_are_dropped(self, d6lab, x):
        b2 = snapshot(d6lab, "c2", C2)
        b1 = snapshot(d6lab, "c1", C1)
        duid1, iaid1 = dhcp6_identity(d6lab, C1)
        n = counter(d6lab, "dhcp6_drop_relay_untrusted")
        fresh = opt(1, b"\0\3\0\1\2\0\0\0\x99\x01")
        # A new client "at" c2's address and at the TEP's, and c1's own DUID relayed from c1's
        # address asking for its reconfigure key: none is heard.
        for peer, inner in ((C2, bytes(DHCP6_Solicit(trid=1)) + fresh + bytes(
                                DHCP6OptRapidCommit()) + ia_dstm(1)),
                            (TEP6, bytes(DHCP6_Solicit(trid=2)) + fresh + bytes(
                                DHCP6OptRapidCommit()) + ia_dstm(2)),
                            (C1, bytes(DHCP6_Rebind(trid=3)) + opt(1, duid1) + bytes(
                                DHCP6OptReconfAccept()) + ia_dstm(iaid1, b1["ipv4"]))):
            relay = DHCP6_RelayForward(hopcount=0, linkaddr="fd00:d57::", peeraddr=peer) / \
                DHCP6OptRelayMsg(message=inner)
            x.send(bytes(relay), dest=SRV6)
            stray = x.recv(timeout=1.0)
            assert stray is None, (peer, stray)
        assert counter(d6lab, "dhcp6_drop_relay_untrusted") == n + 3, d6lab.ctl("srv", "counters")
        assert no_lease_at(d6lab, TEP6)
        # c2's address still has its one lease, no other.
        assert [l["identity"] for l in d6lab.ctl("srv", "leases") if l["ipv6"] == C2 and
                l["state"] == "active"] == [b2["identity"]]
        assert_intact(d6lab, "c2", C2, b2)
        assert_intact(d6lab, "c1", C1, b1)

    def test_reconfigure_key_never_leaks(self, d6lab, x):
        b1 = snapshot(d6lab, "c1", C1)
        duid, iaid = dhcp6_identity(d6lab, C1)
        for cls in (DHCP6_Rebind, DHCP6_Solicit):
            r = x.xchg(cls, opt(1, duid), DHCP6OptElapsedTime(), DHCP6OptReconfAccept(),
                       DHCP6OptRapidCommit(), ia_dstm(iaid, b1["ipv4"]))
            assert r, cls
            # No Authentication option (the key's carrier), no Reconfigure Accept.
            codes = [c for c, _ in options(r[4:])]
            assert 11 not in codes and 20 not in codes, codes
        assert_intact(d6lab, "c1", C1, b1)

        # peer_note learnt c1's address from c1 alone: a revocation's Reconfigure goes to
        # c1 (which renews and is bound again), never to x.
        def listen():
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind((X6, 546))
            return s
        lx = in_netns(d6lab.netns("x"), listen)
        try:
            sent = counter(d6lab, "dhcp6_reconfigure_sent")
            d6lab.ctl("srv", "revoke", address=b1["ipv4"])
            wait_for(lambda: counter(d6lab, "dhcp6_reconfigure_sent") == sent + 1, 5,
                     "the Reconfigure to c1")
            lx.settimeout(1.0)
            with pytest.raises(socket.timeout):
                lx.recvfrom(2048)
        finally:
            lx.close()
        wait_for(lambda: lease_of(d6lab, C1), 30, "c1 bound again")
        snapshot(d6lab, "c1", C1)

    def test_own_renew_rebind_release(self, d6lab, x):
        """x as a client of its own: it renews, rebinds and releases what it holds."""
        duid = opt(1, b"\0\3\0\1\2\0\0\0\0\x66")
        r = x.xchg(DHCP6_Solicit, duid, DHCP6OptElapsedTime(), DHCP6OptRapidCommit(),
                   ia_dstm(7))
        assert r and r[0] == 7 and ia_status(r)[0][0] == 0, r
        v4 = ia_status(r)[0][1]
        assert lease_of(d6lab, X6)["ipv4"] == v4
        wait_for(lambda: d6lab.ctl("tep", "bindings", ipv4=v4), 5, "x's binding")
        for cls, sid in ((DHCP6_Renew, opt(2, x.server_id)), (DHCP6_Rebind, b"")):
            r = x.xchg(cls, duid, sid, DHCP6OptElapsedTime(), ia_dstm(7, v4))
            assert r and ia_status(r) == [(0, v4)], (cls, ia_status(r))
        r = x.xchg(DHCP6_Release, duid, opt(2, x.server_id), DHCP6OptElapsedTime(),
                   ia_dstm(7, v4))
        assert r and ia_status(r)[0][0] == 0, ia_status(r)
        assert no_lease_at(d6lab, X6)

    def test_trusted_relay(self, d6lab):
        """A relay the configuration names speaks for its clients."""
        if d6lab.netns("xr") not in d6lab.namespaces():
            d6lab.plug("xr", XR6)
        relay = Host(d6lab, "xr", XR6)
        peer = "fd00:d57::70"
        inner = bytes(DHCP6_Solicit(trid=9)) + opt(1, b"\0\3\0\1\2\0\0\0\0\x70") + \
            bytes(DHCP6OptRapidCommit()) + ia_dstm(1)
        try:
            relay.send(bytes(DHCP6_RelayForward(hopcount=0, linkaddr="fd00:d57::",
                                                peeraddr=peer) /
                             DHCP6OptRelayMsg(message=inner)), dest=SRV6)
            r = relay.recv()
        finally:
            relay.close()
        assert r and r[0] == 13, r  # Relay-reply
        msg = [b for c, b in options(r[34:]) if c == 9][0]
        assert msg[0] == 7 and ia_status(msg)[0][0] == 0, ia_status(msg)
        v4 = ia_status(msg)[0][1]
        assert lease_of(d6lab, peer)["ipv4"] == v4
        assert [b["ipv6"] for b in d6lab.ctl("tep", "bindings", ipv4=v4)] == [peer]

    def test_trusted_relay_naming_the_tep_gets_nothing(self, d6lab):
        """Even a trusted relay cannot have a lease bound to the TEP's (or server's) address."""
        if d6lab.netns("xr") not in d6lab.namespaces():
            d6lab.plug("xr", XR6)
        relay = Host(d6lab, "xr", XR6)
        n = counter(d6lab, "refused_network_address")
        try:
            for i, peer in enumerate((TEP6, SRV6)):
                inner = bytes(DHCP6_Solicit(trid=20 + i)) + \
                    opt(1, b"\0\3\0\1\2\0\0\0\0\x71") + bytes(DHCP6OptRapidCommit()) + \
                    ia_dstm(1)
                relay.send(bytes(DHCP6_RelayForward(hopcount=0, linkaddr="fd00:d57::",
                                                    peeraddr=peer) /
                                 DHCP6OptRelayMsg(message=inner)), dest=SRV6)
                r = relay.recv()
                assert r and r[0] == 13, r
                msg = [b for c, b in options(r[34:]) if c == 9][0]
                assert all(st != 0 for st, _ in ia_status(msg)), ia_status(msg)
        finally:
            relay.close()
        assert counter(d6lab, "refused_network_address") == n + 2
        assert no_lease_at(d6lab, TEP6) and no_lease_at(d6lab, SRV6)


# ---- TSP from a host of the bridge

class Tsp:
    """A TSP session from `node` (source address `addr`), ANONYMOUS or SCRAM-SHA-256."""

    def __init__(self, lab, node, addr, user=None, password=None):
        self.s = in_netns(lab.netns(node), lambda: socket.create_connection(
            (SRV6, 3653), timeout=5, source_address=(addr, 0)))
        self.f = self.s.makefile("rb")
        self.line("VERSION=2.0.0")
        assert self.f.readline().startswith(b"CAPABILITY")
        if user is None:
            self.line("AUTHENTICATE ANONYMOUS")
        else:
            self.scram(user, password)
        status = self.f.readline()
        assert status.startswith((b"200", b"OK")), status

    def line(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def scram(self, user, password):
        """RFC 5802 / RFC 7677, each step a base64 line."""
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first = "n=%s,r=%s" % (user, cnonce)
        self.line("AUTHENTICATE SCRAM-SHA-256")
        self.line(base64.b64encode(("n,," + first).encode()).decode())
        server_first = base64.b64decode(self.f.readline().strip()).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        ckey = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        final = "c=biws,r=" + attrs["r"]
        auth = ",".join((first, server_first, final)).encode()
        sig = hmac.new(hashlib.sha256(ckey).digest(), auth, hashlib.sha256).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig))).decode()
        self.line(base64.b64encode((final + ",p=" + proof).encode()).decode())
        server_final = base64.b64decode(self.f.readline().strip())
        assert server_final.startswith(b"v="), server_final
        self.line("")  # the client's empty step after the server's proof

    def command(self, action, v6=None):
        client = '<client><address type="ipv6">%s</address></client>' % v6 if v6 else ""
        xml = '<tunnel action="%s" type="v4v6">%s</tunnel>' % (action, client)
        self.s.sendall(b"Content-length: %d\r\n" % len(xml) + xml.encode())
        head = self.f.readline()
        body = self.f.read(int(head.split(b":")[1]))
        status, _, rest = body.partition(b"\r\n")
        return int(status.split()[0]), rest.decode()

    def close(self):
        self.s.close()


def ipv4_of(xml):
    part = xml.split("<client>")[1].split("</client>")[0]
    return part.split('<address type="ipv4">')[1].split("<")[0]


@pytest.fixture(scope="class")
def tsplab():
    yield from bring_up(access="tsp")


class TestTsp:
    def test_anonymous_delete_of_c1_refused(self, tsplab):
        before = snapshot(tsplab, "c1", C1)
        n = counter(tsplab, "drop_foreign_client_v6")
        t = Tsp(tsplab, "x", X6)
        try:
            assert t.command("delete", C1)[0] == 309
        finally:
            t.close()
        assert counter(tsplab, "drop_foreign_client_v6") == n + 1
        assert_intact(tsplab, "c1", C1, before)

    def test_anonymous_create_naming_c1_refused(self, tsplab):
        before = snapshot(tsplab, "c1", C1)
        n = counter(tsplab, "drop_foreign_client_v6")
        t = Tsp(tsplab, "x", X6)
        try:
            assert t.command("create", C1)[0] == 309
        finally:
            t.close()
        assert counter(tsplab, "drop_foreign_client_v6") == n + 1
        assert_intact(tsplab, "c1", C1, before)
        # c1's session is still its own: the operator's revoke reaches c1.
        sent = counter(tsplab, "deletes_sent")
        tsplab.ctl("srv", "revoke", address=before["ipv4"])
        wait_for(lambda: counter(tsplab, "deletes_sent") == sent + 1, 5, "delete to c1")
        wait_for(lambda: lease_of(tsplab, C1), 30, "c1 bound again")

    def test_create_naming_unused_or_tep_address_refused(self, tsplab):
        n = counter(tsplab, "drop_foreign_client_v6")
        t = Tsp(tsplab, "x", X6)
        try:
            for v6 in ("fd00:d57::99", TEP6, SRV6):
                assert t.command("create", v6)[0] == 309, v6
        finally:
            t.close()
        assert counter(tsplab, "drop_foreign_client_v6") == n + 3
        for v6 in ("fd00:d57::99", TEP6, SRV6):
            assert no_lease_at(tsplab, v6)
            assert not [b for b in tsplab.ctl("tep", "bindings") if b["ipv6"] == v6]

    def test_anonymous_own_create_and_delete(self, tsplab):
        t = Tsp(tsplab, "x", X6)
        try:
            st, xml = t.command("create")
            assert st == 200
            assert lease_of(tsplab, X6)["identity"] == "anon:" + X6
            st2, xml2 = t.command("create", X6)  # renewal, naming its own address
            assert st2 == 200 and ipv4_of(xml2) == ipv4_of(xml)
            assert t.command("delete")[0] == 200
            assert no_lease_at(tsplab, X6)
            # Continuity: asking again within the quarantine gives the same address back.
            st3, xml3 = t.command("create")
            assert st3 == 200 and ipv4_of(xml3) == ipv4_of(xml)
            assert t.command("delete")[0] == 200
        finally:
            t.close()
        assert no_lease_at(tsplab, X6)

    def test_authenticated_client_moves(self, tsplab):
        x2 = "fd00:d57::68"
        t = Tsp(tsplab, "x", X6, "alice", "dstm-lab-alice")
        try:
            st, xml = t.command("create")
            assert st == 200
            v4 = ipv4_of(xml)
            assert lease_of(tsplab, X6)["identity"] == "tsp:alice"
        finally:
            t.close()
        tsplab.exec("x", "ip", "addr", "add", x2 + "/64", "dev", "eth0", "nodad", check=True)
        try:
            t = Tsp(tsplab, "x", x2, "alice", "dstm-lab-alice")
            try:
                # Naming another address is refused (no auth.endpoints entry for alice).
                assert t.command("create", C1)[0] == 309
                st, xml = t.command("create")
                assert st == 200 and ipv4_of(xml) == v4
                l = lease_of(tsplab, x2)
                assert l and l["identity"] == "tsp:alice" and l["ipv4"] == v4
                assert no_lease_at(tsplab, X6)
                assert [b["ipv6"] for b in tsplab.ctl("tep", "bindings", ipv4=v4)] == [x2]
                assert t.command("delete")[0] == 200
            finally:
                t.close()
        finally:
            tsplab.exec("x", "ip", "addr", "del", x2 + "/64", "dev", "eth0")


def test_database_files_are_private(tsplab):
    """dstmd, started by scripts/lab as root with a 022 umask, creates its lease database
    and the files next to it readable by itself only."""
    d = tsplab.path("srv")
    files = [f for f in os.listdir(d) if f.startswith("leases.db") or f == "dhcp6-duid"]
    assert "leases.db" in files, os.listdir(d)
    for f in files:
        mode = os.stat(os.path.join(d, f)).st_mode & 0o777
        assert mode & 0o077 == 0, (f, oct(mode))

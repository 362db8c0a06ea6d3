"""The identity rule (DESIGN §4) where lw4o6 opens a door: an lwB4 has no
verified address of its own (it speaks from link-local and names, in its
IA_NA, the address the server gave its DUID and IAID), so the lw4o6 paths
take a DUID and IAID for the client. From an extra host `x` with a global
address (fd00:d57::66), on a lab whose dstmd serves lwB4s (--portset
psid), a DSTM client c1's DUID and IAID, read off the wire, must neither
move c1's lease into the lw4o6 pool (a Solicit, an Advertise's Request or
a Request asking for OPTION_S46_CONT_LW) nor release it (a Release whose
IA_NA names c1's address). Each attempt gets NoBinding and is counted
(dhcp6_refused_foreign); c1's lease, its TEP binding and its traffic stay.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_identity_lw.py
"""

import os
import socket
import struct

import pytest

pytest.importorskip("scapy.layers.dhcp6")
from scapy.layers.dhcp6 import (  # noqa: E402
    DHCP6_InfoRequest, DHCP6_Release, DHCP6_Request, DHCP6_Solicit, DHCP6OptElapsedTime,
    DHCP6OptRapidCommit)

from lab import Lab, client_ipv6  # noqa: E402
from test_identity import (  # noqa: E402
    X6, Host, assert_intact, counter, dhcp6_identity, in_netns, opt, options, snapshot)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

C1 = client_ipv6(1)
NO_BINDING = 3
ORO_S46 = opt(6, struct.pack("!H", 96))  # OPTION_S46_CONT_LW asked for: the lw4o6 path


def ia_na(iaid, addr=None):
    body = struct.pack("!III", iaid, 0, 0)
    if addr:
        body += opt(5, socket.inet_pton(socket.AF_INET6, addr) + struct.pack("!II", 0, 0))
    return opt(3, body)


def ia_na_status(reply):
    """(status, address) of each IA_NA of a reply (status 0 when it carries none)."""
    out = []
    for code, body in options(reply[4:]):
        if code == 3:
            sub = options(body[12:])
            st = [struct.unpack("!H", b[:2])[0] for c, b in sub if c == 13]
            addr = [socket.inet_ntop(socket.AF_INET6, b[:16]) for c, b in sub if c == 5]
            out.append((st[0] if st else 0, addr[0] if addr else None))
    return out


@pytest.fixture(scope="module")
def lwlab():
    lab = Lab()
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(access="dhcpv6", clients=1, portset="psid")
        lab.plug("x", X6)
        yield lab
    finally:
        lab.down()


@pytest.fixture
def x(lwlab):
    h = Host(lwlab, "x", X6)
    r = h.xchg(DHCP6_InfoRequest, opt(1, b"\0\3\0\1\2\0\0\0\0\x66"), DHCP6OptElapsedTime())
    assert r, "dstmd does not answer x's Information-request"
    h.server_id = [b for c, b in options(r[4:]) if c == 2][0]
    yield h
    h.close()


def test_lw4o6_requests_do_not_move_a_dstm_lease(lwlab, x):
    before = snapshot(lwlab, "c1", C1)
    duid, iaid = dhcp6_identity(lwlab, C1)
    n = counter(lwlab, "dhcp6_refused_foreign")
    for cls, extra in ((DHCP6_Solicit, bytes(DHCP6OptRapidCommit())),
                       (DHCP6_Solicit, b""),
                       (DHCP6_Request, opt(2, x.server_id))):
        r = x.xchg(cls, opt(1, duid), extra, bytes(DHCP6OptElapsedTime()), ORO_S46, ia_na(iaid))
        assert r, cls
        # No address: NoBinding in the IA (a Reply), or an Advertise that has no IA
        # left and says NoAddrsAvail (RFC 8415 §18.3.9).
        assert all(a is None for _, a in ia_na_status(r)), (cls, r.hex())
        assert ia_na_status(r) == [(NO_BINDING, None)] or (r[0] == 2 and not ia_na_status(r)), \
            (cls, r.hex())
    assert counter(lwlab, "dhcp6_refused_foreign") == n + 3
    assert_intact(lwlab, "c1", C1, before)


def test_release_naming_an_address_from_a_global_sender_changes_nothing(lwlab, x):
    before = snapshot(lwlab, "c1", C1)
    duid, iaid = dhcp6_identity(lwlab, C1)
    n = counter(lwlab, "dhcp6_refused_foreign")
    r = x.xchg(DHCP6_Release, opt(1, duid), opt(2, x.server_id), DHCP6OptElapsedTime(),
               ia_na(iaid, C1))
    assert r and ia_na_status(r) == [(NO_BINDING, None)], r and ia_na_status(r)
    assert counter(lwlab, "dhcp6_refused_foreign") == n + 1
    assert_intact(lwlab, "c1", C1, before)


def test_release_from_link_local_names_no_dstm_lease(lwlab, x):
    """The lwB4's own way (link-local source, the address in the IA_NA) is for lw4o6
    leases: x, speaking from its link-local address, cannot release c1's DSTM lease."""
    before = snapshot(lwlab, "c1", C1)
    duid, iaid = dhcp6_identity(lwlab, C1)
    r = lwlab.exec("x", "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
    ll = r.stdout.split()[3].split("/")[0]

    def mk():
        ifindex = socket.if_nametoindex("eth0")
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((ll, 0, 0, ifindex))
        return s, ifindex
    h = Host.__new__(Host)  # a Host speaking from x's link-local address
    h.s, h.ifindex = in_netns(lwlab.netns("x"), mk)
    h.trid = 0x5000
    try:
        n = counter(lwlab, "dhcp6_refused_foreign")
        r = h.xchg(DHCP6_Release, opt(1, duid), opt(2, x.server_id), DHCP6OptElapsedTime(),
                   ia_na(iaid, C1))
        assert r and ia_na_status(r) == [(NO_BINDING, None)], r and ia_na_status(r)
        assert counter(lwlab, "dhcp6_refused_foreign") == n + 1
    finally:
        h.close()
    assert_intact(lwlab, "c1", C1, before)

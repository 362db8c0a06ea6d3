"""TSP over UDP proves no source address: a host of the link can send, under
a client's address and without reading a single answer, VERSION,
AUTHENTICATE ANONYMOUS and a delete. Such a delete must not end the
client's lease (DESIGN §4: a message acts on a lease only from a verified
address). The foreign host `x` (fd00:d57::66) sends the three datagrams
with c1's source address (IPV6_FREEBIND); c1's lease, its TEP binding and
its traffic stay, and drop_udp_anonymous_delete counts the attempt.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_udp_spoof.py
"""

import os
import socket
import struct
import time

import pytest

from lab import SRV6, client_ipv6
from test_identity import X6, assert_intact, bring_up, counter, in_netns, snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

C1 = client_ipv6(1)
IPV6_FREEBIND = 78


@pytest.fixture(scope="module")
def lab():
    yield from bring_up()


def spoofed_session(src, messages):
    """Send each message as one RFC 5572 datagram from `src`, never reading an answer."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        s.bind((src, 0))
        for seq, m in enumerate(messages):
            s.sendto(struct.pack("!II", 0xF0000000 | (0x100 + seq), seq * 300) + m,
                     (SRV6, 3653))
            time.sleep(0.3)
    finally:
        s.close()


def delete_xml(client6):
    xml = ('<tunnel action="delete" type="v4v6">\r\n'
           ' <client><address type="ipv6">%s</address></client>\r\n'
           '</tunnel>\r\n' % client6).encode()
    return b"Content-length: %d\r\n" % len(xml) + xml


def test_spoofed_anonymous_udp_delete_changes_nothing(lab):
    before = snapshot(lab, "c1", C1)
    refused = counter(lab, "drop_udp_anonymous_delete")
    in_netns(lab.netns("x"), lambda: spoofed_session(
        C1, [b"VERSION=2.0.0\r\n", b"AUTHENTICATE ANONYMOUS\r\n", delete_xml(C1)]))
    deadline = time.monotonic() + 5
    while counter(lab, "drop_udp_anonymous_delete") == refused and time.monotonic() < deadline:
        time.sleep(0.1)
    assert counter(lab, "drop_udp_anonymous_delete") == refused + 1
    assert_intact(lab, "c1", C1, before)


def test_udp_anonymous_create_from_the_real_source_still_works(lab):
    """The rule costs deployed clients nothing: they create over UDP and never delete."""
    from tsp_replay import Udp, create_xml, framed

    def run():
        u = Udp(SRV6)
        try:
            assert u.sendrecv(b"VERSION=2.0.0\r\n").startswith(b"CAPABILITY")
            assert u.sendrecv(b"AUTHENTICATE ANONYMOUS\r\n").startswith(b"200")
            return u.sendrecv(framed(create_xml(X6)))
        finally:
            u.close()

    reply = in_netns(lab.netns("x"), run)
    assert b"200 Success" in reply, reply

"""TSP over UDP on loopback (dstmd alone, RFC 5572 §3): what a stranger can
make of it. Sessions are made only by a VERSION datagram and only within
the TCP limits (connections_per_64 here, an idle session of the /64 giving
its place to a new one); datagrams without the header, a
first datagram that is no VERSION line, an older sequence number and a
message over the size limits are dropped, each on its own counter; a
retransmission gets the answer it had, with its own timestamp. On a
wildcard address the answer leaves from the address the client sent to."""

import os
import socket
import struct
import tempfile
import time

import pytest

from dstmd_proc import DSTMD, Dstmd, free_port

pytestmark = pytest.mark.skipif(not os.path.exists(DSTMD), reason="dstmd is not built")


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="dstmd-udp-") as d:
        yield d


def sock(d):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.connect(("::1", d.port))
    s.settimeout(2)
    return s


def ask(s, seq, msg, ts=7):
    s.send(struct.pack("!II", 0xF0000000 | seq, ts) + msg)
    try:
        return s.recv(65535)
    except socket.timeout:
        return None


def quiet(s, seq, msg):
    """A datagram that must get no answer at all."""
    s.settimeout(0.5)
    try:
        return ask(s, seq, msg)
    finally:
        s.settimeout(2)


def bind(s, v6):
    """ANONYMOUS and a create (::1 is a relay the test config trusts): a lease."""
    assert ask(s, 0xF1, b"AUTHENTICATE ANONYMOUS\r\n\0")[8:] == b"200 Success\r\n"
    xml = (b'<tunnel action="create" type="v4v6"><client><address type="ipv6">%s'
           b'</address></client></tunnel>\r\n' % v6.encode())
    body = ask(s, 0xF2, b"Content-length: %d\r\n" % len(xml) + xml)[8:]
    assert b"\r\n200 Success\r\n<tunnel action=\"info\"" in body, body


def test_sessions_only_within_the_tcp_limits(tmp):
    d = Dstmd(tmp, limits={"connections_per_64": 4}).start()
    try:
        cap = b"CAPABILITY TUNNEL=V4V6 AUTH=ANONYMOUS\r\n"
        idle = sock(d)
        assert ask(idle, 0xF0, b"VERSION=2.0.0\r\n") == struct.pack("!II", 0xF00000F0, 7) + cap
        busy = [sock(d) for _ in range(4)]
        for i, s in enumerate(busy):
            assert ask(s, 0xF0, b"VERSION=2.0.0\r\n")[8:] == cap
            bind(s, "fd00:d57::%x" % (0x70 + i))
        # The fourth took the place of the idle one, as a TCP connection would.
        c = d.counters()
        assert c["sessions_evicted_idle"] == 1
        assert quiet(idle, 0xF1, b"AUTHENTICATE ANONYMOUS\r\n") is None
        # Four sessions holding leases fill the /64: a fifth is refused, UDP or TCP.
        extra = sock(d)
        assert quiet(extra, 0xF0, b"VERSION=2.0.0\r\n") is None
        t = socket.create_connection(("::1", d.port), timeout=2)
        try:
            t.sendall(b"VERSION=2.0.0\r\n")
            closed = t.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed = True  # closed before our bytes arrived: a reset
        assert closed
        t.close()
        c = d.counters()
        assert (c["udp_sessions"], c["udp_refused"]) == (5, 1)
        assert c["drop_conn_quota_64"] == 2
        assert c["udp_drop_no_session"] == 1
        assert len(d.ctl("leases")) == 4
        for s in busy + [idle, extra]:
            s.close()
    finally:
        d.kill()


def test_what_a_stranger_sends_is_dropped_and_counted(tmp):
    d = Dstmd(tmp).start()
    try:
        s = sock(d)
        assert quiet(s, 0, b"") is None  # a header alone from a stranger
        s.send(b"\xf0\x00\x00")  # shorter than the header
        s.send(b"\x70\x00\x00\x01\x00\x00\x00\x00VERSION=2.0.0\r\n")  # no 0xF nibble
        assert quiet(s, 0xF1, b"AUTHENTICATE ANONYMOUS\r\n") is None  # no session yet
        cap = ask(s, 0xF5, b"VERSION=2.0.0\r\n", ts=100)
        assert cap[8:] == b"CAPABILITY TUNNEL=V4V6 AUTH=ANONYMOUS\r\n"
        # The same request again: the same answer, stamped with the new timestamp.
        again = ask(s, 0xF5, b"VERSION=2.0.0\r\n", ts=250)
        assert again == struct.pack("!II", 0xF00000F5, 250) + cap[8:]
        assert quiet(s, 0xF3, b"AUTHENTICATE ANONYMOUS\r\n\0") is None  # older: stale
        ok = ask(s, 0xF6, b"AUTHENTICATE ANONYMOUS\r\n\0")
        assert ok[8:] == b"200 Success\r\n"
        # Over the size limits: the session ends, and only a VERSION starts another.
        assert quiet(s, 0xF7, b"A" * 30000) is None
        time.sleep(0.2)
        assert quiet(s, 0xF8, b"Content-length: 0\r\n") is None
        c = d.counters()
        assert c["udp_drop_header"] == 2
        assert c["udp_drop_no_session"] == 3
        assert c["udp_drop_stale"] == 1
        assert c["udp_retransmits"] == 1
        assert c["udp_drop_too_long"] == 1 and c["tsp_too_long"] == 1
        assert ask(s, 0xF0, b"VERSION=1.0\r\n")[8:].startswith(b"CAPABILITY")
        s.close()
    finally:
        d.kill()


def test_wildcard_answers_from_the_address_asked(tmp):
    """On 0.0.0.0 a datagram to 127.0.0.2 from 127.0.0.1 is answered from
    127.0.0.2 (IP_PKTINFO): routing alone would pick 127.0.0.1, which the
    client's connected socket refuses. [::] answers on ::1 as well."""
    p4, p6 = free_port(), free_port()
    d = Dstmd(tmp, listen=[{"address": "0.0.0.0:%d" % p4}, {"address": "[::]:%d" % p6}]).start()
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.connect(("127.0.0.2", p4))
        s.settimeout(2)
        cap = ask(s, 0xF0, b"VERSION=2.0.0\r\n")
        assert cap is not None and cap[8:].startswith(b"CAPABILITY"), cap
        # A retransmission is answered from there too.
        assert ask(s, 0xF0, b"VERSION=2.0.0\r\n")[8:] == cap[8:]
        s.close()
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.connect(("::1", p6))
        s.settimeout(2)
        cap = ask(s, 0xF0, b"VERSION=2.0.0\r\n")
        assert cap is not None and cap[8:].startswith(b"CAPABILITY"), cap
        s.close()
        assert d.counters()["udp_send_errors"] == 0
    finally:
        d.kill()

#!/usr/bin/env python3
"""Replay, byte for byte, what the deployed TSP clients send (the tunnel
clients descended from the Hexago/Freenet6 client, "tspc"/"gogoc", in v4v6
mode; RFC 5572), run inside a lab node's namespace by test_tsp_field.py.

What those clients do, and this replays:
  - TCP or UDP to port 3653. Over UDP every message rides behind RFC 5572's
    8-byte header: 0xF and a 28-bit sequence number (tspc starts at 0xF0),
    then a millisecond timestamp; every request is retransmitted until a
    datagram with its sequence number comes back, whose message is the
    answer. Reading "the next line" is itself a request: a header alone.
  - "VERSION=2.0.0" CRLF, then one read of the CAPABILITY line, parsed into its
    TUNNEL= and AUTH= words; "any" picks DIGEST-MD5 before PLAIN, as tspc does.
  - "AUTHENTICATE <MECH>" CRLF plus the C string's terminating NUL.
  - ANONYMOUS: one read, a numeric status ("200").
  - PLAIN: at once, unasked, "\\0user\\0password" CRLF (raw), or base64.
  - DIGEST-MD5: one read of the challenge, split on "," alone; an md5-sess
    response with nc=00000001, a decimal cnonce and digest-uri
    "tsp/<server>"; one read that must hold exactly the rspauth line; one
    more read for the status.
  - The create of xml_req.c (v4v6, proxy="no", the client's IPv6, a
    keepalive naming 127.0.0.1), framed "Content-length: N" CRLF + XML;
    then "<tunnel action="accept"></tunnel>" CRLF the same way.

usage: tsp_replay.py JSON   (keys: server, transport, version, mech, user, password,
       plain ("raw"|"b64"), client6, lose_create (UDP: drop the first answer
       to the create and retransmit it), ping (an IPv4 address to reach through
       the TEP afterwards), keepalive (ping the keepalive address too))
Prints one JSON object: what was sent and read, and the outcome.
"""
import base64
import hashlib
import json
import re
import select
import socket
import struct
import sys
import time

PORT = 3653


def log_bytes(b):
    return b.decode("latin-1")


class Tcp:
    def __init__(self, server):
        self.s = socket.create_connection((server, PORT), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data):
        self.s.sendall(data)

    def recv(self):
        """One read, as tspc's netrecv (a single recv() into its buffer)."""
        return self.s.recv(4096)

    def sendrecv(self, data):
        self.send(data)
        return self.recv()

    def close(self):
        self.s.close()


class Udp:
    """tspc's net_rudp.c: each call is one request and waits for its answer."""

    def __init__(self, server):
        self.s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.s.connect((server, PORT))
        self.seq = 0xF0
        self.t0 = time.monotonic()
        self.lost = 0
        self.answers = {}

    def stamp(self):
        return int((time.monotonic() - self.t0) * 1000) & 0xFFFFFFFF

    def request(self, data, lose_first=False):
        seq = self.seq
        self.seq += 1
        lost = False
        for attempt in range(12):
            # tspc updates the timestamp on every retransmission, never the sequence number.
            self.s.send(struct.pack("!II", 0xF0000000 | seq, self.stamp()) + data)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                r, _, _ = select.select([self.s], [], [], max(0.0, deadline - time.monotonic()))
                if not r:
                    break
                d = self.s.recv(65535)
                if len(d) < 8 or struct.unpack("!I", d[:4])[0] != 0xF0000000 | seq:
                    continue
                self.answers.setdefault(seq, []).append(d[8:])
                if lose_first and not lost:
                    lost = True  # the answer "got lost": retransmit the same request
                    self.lost += 1
                    break
                return d[8:]
        raise TimeoutError("no answer to sequence number %#x" % seq)

    def send(self, data):
        self.request(data)

    def recv(self):
        return self.request(b"")

    def sendrecv(self, data):
        return self.request(data)

    def close(self):
        self.s.close()


def capabilities(line):
    """tspExtractCapability(): "CAPABILITY TUNNEL=V4V6 AUTH=A …" into {"TUNNEL": […], "AUTH": […]}."""
    caps = {}
    words = line.decode("latin-1").split()
    if not words or words[0] != "CAPABILITY":
        return caps
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            caps.setdefault(k.upper(), []).append(v.upper())
    return caps


def choose(mech, caps):
    """tspAuthenticate(): "any" takes the strongest both know (tspc: PASSDSS-3DES-1, then
    DIGEST-MD5, then PLAIN; ANONYMOUS only when asked for by name)."""
    offered = caps.get("AUTH", [])
    if mech != "any":
        return mech if mech in offered else None
    for m in ("PASSDSS-3DES-1", "DIGEST-MD5", "PLAIN"):
        if m in offered:
            return m
    return None


def status_of(line):
    m = re.match(rb"\s*(\d+)", line)
    return int(m.group(1)) if m else None


def challenge_split(text):
    """ExtractChallenge() of tsp_auth.c: split on "," only, quotes chopped."""
    out = {}
    for part in text.split(","):
        if "=" not in part:
            continue
        k, v = part.split("=", 1)
        if v.startswith('"'):
            v = v[1:]
        if v.endswith('"'):
            v = v[:-1]
        out[k] = v
    return out


def md5hex(b):
    return hashlib.md5(b).hexdigest()


def digest(t, server, user, password, res):
    ch_line = t.sendrecv(b"AUTHENTICATE DIGEST-MD5\r\n\0")
    res["challenge_line"] = log_bytes(ch_line)
    if status_of(ch_line) == 300:
        return ch_line
    ch = base64.b64decode(ch_line.strip()).decode()
    res["challenge"] = ch
    c = challenge_split(ch)
    cnonce = int(time.time())
    a1_1 = hashlib.md5(("%s:%s:%s" % (user, c["realm"], password)).encode()).digest()
    a1 = md5hex(a1_1 + (":%s:%d" % (c["nonce"], cnonce)).encode())
    a2 = md5hex(("AUTHENTICATE:tsp/%s" % server).encode())
    ca2 = md5hex((":tsp/%s" % server).encode())
    resp = md5hex(("%s:%s:00000001:%d:%s:%s" % (a1, c["nonce"], cnonce, c["qop"], a2)).encode())
    cresp = md5hex(("%s:%s:00000001:%d:%s:%s" % (a1, c["nonce"], cnonce, c["qop"], ca2)).encode())
    msg = ('charset=%s,username="%s",realm="%s",nonce="%s",nc=00000001,cnonce="%d",'
           'digest-uri="tsp/%s",response=%s,qop=auth'
           % (c.get("charset"), user, c["realm"], c["nonce"], cnonce, server, resp))
    first = t.sendrecv(base64.b64encode(msg.encode()) + b"\r\n")
    res["rspauth_read"] = log_bytes(first)
    if status_of(first) == 300:
        return first
    # tspc decodes the whole read as base64 and compares rspauth: it must be alone.
    got = challenge_split(base64.b64decode(first.strip()).decode())
    res["rspauth_ok"] = got.get("rspauth") == cresp
    return t.recv()


def create_xml(client6):
    return ('<tunnel action="create" type="v4v6" proxy="no">\r\n'
            ' <client>\r\n'
            '  <address type="ipv6">%s</address>\r\n'
            '  <keepalive interval="30">\r\n'
            '    <address type="ipv4">127.0.0.1</address>\r\n'
            '  </keepalive>\r\n'
            ' </client>\r\n'
            '</tunnel>\r\n' % client6).encode()


def framed(xml):
    return b"Content-length: %d\r\n" % len(xml) + xml


def parse_reply(body, res):
    text = body.decode("latin-1")
    res["reply"] = text
    m = re.search(r"\r\n(\d+) [^\r\n]*\r\n", text)
    res["reply_status"] = int(m.group(1)) if m else None

    def addr(section, typ):
        m = re.search(r"<%s>(.*?)</%s>" % (section, section), text, re.S)
        if not m:
            return None
        inner = re.sub(r"<keepalive.*?</keepalive>", "", m.group(1), flags=re.S)
        m2 = re.search(r'<address type="%s">([^<]+)</address>' % typ, inner)
        return m2.group(1) if m2 else None

    res["client4"] = addr("client", "ipv4")
    res["client6"] = addr("client", "ipv6")
    res["tep4"] = addr("server", "ipv4")
    res["tep6"] = addr("server", "ipv6")
    m = re.search(r'lifetime="(\d+)"', text)
    res["lifetime"] = int(m.group(1)) if m else None
    m = re.search(r'<keepalive interval="(\d+)"><address type="ipv4">([^<]+)</address>'
                  r'</keepalive>', text)
    res["keepalive_interval"] = int(m.group(1)) if m else None
    res["keepalive4"] = m.group(2) if m else None


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def echo4(src, dst, ident, seq):
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"dstm-field-test!"
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), ident, 0, 64, 1, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + icmp


def ping_through(client6, tep6, client4, dst, ident):
    """An ICMP echo inside 4in6 to the TEP; True when the echo reply comes back in."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_IPIP)
    s.bind((client6, 0))
    try:
        for seq in range(1, 6):
            s.sendto(echo4(client4, dst, ident, seq), (tep6, 0))
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
                if not r:
                    break
                pkt, src = s.recvfrom(65535)
                if src[0] != tep6 or len(pkt) < 28:
                    continue
                hl = (pkt[0] & 15) * 4
                if (pkt[9] == 1 and socket.inet_ntoa(pkt[12:16]) == dst and
                        socket.inet_ntoa(pkt[16:20]) == client4 and pkt[hl] == 0 and
                        struct.unpack("!H", pkt[hl + 4:hl + 6])[0] == ident):
                    return True
        return False
    finally:
        s.close()


RES = {}


def main():
    a = json.loads(sys.argv[1])
    server = a["server"]
    res = RES
    res.update({"transport": a["transport"], "mech": a["mech"]})
    t = Tcp(server) if a["transport"] == "tcp" else Udp(server)
    try:
        cap = t.sendrecv(b"VERSION=%s\r\n" % a.get("version", "2.0.0").encode())
        res["capability"] = log_bytes(cap)
        caps = capabilities(cap)
        if "V4V6" not in caps.get("TUNNEL", []):
            res["error"] = "the server offers no v4v6 tunnel"
            return res
        mech = res["chosen"] = choose(a["mech"], caps)
        if mech is None:
            res["error"] = "no common authentication mechanism"
            return res
        if mech == "ANONYMOUS":
            st = t.sendrecv(b"AUTHENTICATE ANONYMOUS\r\n\0")
        elif mech == "PLAIN":
            t.send(b"AUTHENTICATE PLAIN\r\n\0")
            cred = b"\0" + a["user"].encode() + b"\0" + a["password"].encode()
            if a.get("plain") == "b64":
                cred = base64.b64encode(cred)
            st = t.sendrecv(cred + b"\r\n")
        else:
            st = digest(t, server, a["user"], a["password"], res)
        res["auth_line"] = log_bytes(st)
        # the DSTM profile (VERSION=1.0) ends authentication on "OK …"
        res["auth_status"] = 200 if st.startswith(b"OK ") else status_of(st)
        if res["auth_status"] != 200:
            if a["transport"] == "tcp":
                # "300 …" CRLF and then a clean close: the next read is EOF.
                t.s.settimeout(5)
                res["closed_after"] = t.recv() == b""
            return res
        req = framed(create_xml(a["client6"]))
        if a["transport"] == "udp":
            body = t.request(req, lose_first=a.get("lose_create", False))
            res["lost"] = t.lost
            answers = t.answers.get(max(t.answers))
            res["answers_to_create"] = len(answers)
            res["answers_identical"] = all(x == answers[0] for x in answers)
        else:
            body = t.sendrecv(req)
            # the answer may come in more than one read
            while b"</tunnel>" not in body:
                more = t.recv()
                if not more:
                    break
                body += more
        parse_reply(body, res)
        t.send(framed(b'<tunnel action="accept"></tunnel>\r\n'))
    finally:
        t.close()
    if a.get("ping") and res.get("client4"):
        res["ping_ok"] = ping_through(a["client6"], res["tep6"], res["client4"], a["ping"],
                                      0x4242)
    if a.get("keepalive") and res.get("keepalive4"):
        res["keepalive_ok"] = ping_through(a["client6"], res["tep6"], res["client4"],
                                           res["keepalive4"], 0x4343)
    return res


if __name__ == "__main__":
    try:
        out = main()
    except Exception as e:  # the test reads the failure from the JSON
        out = dict(RES, error="%s: %s" % (type(e).__name__, e))
    print(json.dumps(out))

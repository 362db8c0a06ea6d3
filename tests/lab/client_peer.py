#!/usr/bin/env python3
"""A minimal DSTM server and TEP for testing dstm-client alone, in a
private network namespace, before or without the real dstmd and dstm-tep.

It speaks the DSTM profile of TSP (seed 001 appendix C, DESIGN 3.1) with
ANONYMOUS authentication, hands out one address per session with a
short lifetime, and acts as the TEP with a raw IPPROTO_IPIP socket:
it answers ICMP echo requests and echoes UDP datagrams sent to the IPv4
"far" host, so that the client's whole data path is exercised with real
packets. Commands on stdin drive it: "delete" sends the server's delete
on every open session; "quit" stops. It logs one JSON line per event on
stdout (create, renew, delete-from-client, tunnelled packets).

usage: client_peer.py SERVER6 TEP6 TEP4 FAR4 POOL_FIRST LIFETIME
"""
import ipaddress
import json
import os
import re
import select
import socket
import struct
import sys
import threading
import time

SERVER6, TEP6, TEP4, FAR4, POOL_FIRST, LIFETIME = sys.argv[1:7]
LIFETIME = int(LIFETIME)
lock = threading.Lock()
sessions = []
next_addr = [int(ipaddress.IPv4Address(POOL_FIRST))]
bound = {}  # client IPv4 -> client IPv6


def log(**kw):
    with lock:
        print(json.dumps(kw), flush=True)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tunnel_xml(action, v4, v6, lifetime):
    return ('<tunnel action="%s" type="v4v6" lifetime="%d">'
            '<server><address type="ipv4">%s</address><address type="ipv6">%s</address></server>'
            '<client><address type="ipv4">%s</address><address type="ipv6">%s</address></client>'
            '</tunnel>' % (action, lifetime, TEP4, TEP6, v4, v6))


def send_frame(conn, status, xml=""):
    body = ("%s\r\n%s" % (status, xml)).encode()
    conn.sendall(b"Content-length: %d\r\n" % len(body) + body)


def read_line(f):
    line = f.readline()
    return line.rstrip(b"\r\n").strip(b"\0").decode()


def session(conn):
    f = conn.makefile("rb")
    try:
        read_line(f)  # VERSION=...
        conn.sendall(b"CAPABILITY TUNNEL=V4V6 AUTH=ANONYMOUS\r\n")
        if read_line(f) != "AUTHENTICATE ANONYMOUS":
            return
        conn.sendall(b"200 Success\r\n")
        while True:
            hdr = read_line(f)
            if not hdr:
                return
            n = int(hdr.split(":")[1])
            xml = f.read(n).decode()
            action = re.search(r'action="(\w+)"', xml).group(1)
            v6 = re.search(r'type="ipv6">([^<]+)<', xml).group(1)
            m = re.search(r'type="ipv4">([^<]+)<', xml)
            if action == "create":
                if m:
                    v4 = m.group(1)
                    log(event="renew", v4=v4, v6=v6)
                else:
                    with lock:
                        v4 = str(ipaddress.IPv4Address(next_addr[0]))
                        next_addr[0] += 1
                    log(event="create", v4=v4, v6=v6, ll="fe80:" in xml)
                with lock:
                    bound[v4] = v6
                    sessions.append((conn, v4, v6))
                send_frame(conn, "200 Success", tunnel_xml("info", v4, v6, LIFETIME))
            elif action == "delete":
                log(event="delete-from-client", v4=m.group(1) if m else None)
                with lock:
                    bound.pop(m.group(1), None)
                send_frame(conn, "200 Success", "")
            elif action == "info":
                log(event="info-from-client")
    except (OSError, ValueError, AttributeError) as e:
        log(event="session-error", error=str(e))
    finally:
        conn.close()


def server():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((SERVER6, 3653))
    s.listen(8)
    while True:
        c, _ = s.accept()
        threading.Thread(target=session, args=(c,), daemon=True).start()


def tep():
    r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
    r.bind((TEP6, 0))
    far = socket.inet_aton(FAR4)
    while True:
        pkt, src = r.recvfrom(65535)
        ihl = (pkt[0] & 15) * 4
        s4, d4 = pkt[12:16], pkt[16:20]
        with lock:
            ok = bound.get(socket.inet_ntoa(s4)) == src[0]
        log(event="tunnelled", src6=src[0], src4=socket.inet_ntoa(s4), dst4=socket.inet_ntoa(d4),
            proto=pkt[9], bound=ok)
        if not ok or d4 != far:
            continue
        body = bytearray(pkt[ihl:])
        if pkt[9] == 1 and body[0] == 8:
            body[0] = 0
            body[2:4] = b"\0\0"
            body[2:4] = struct.pack("!H", csum(bytes(body)))
        elif pkt[9] == 17:
            body[0:2], body[2:4] = body[2:4], body[0:2]
            body[6:8] = b"\0\0"
        elif pkt[9] == 6:
            continue
        hdr = bytearray(pkt[:20])
        hdr[0] = 0x45
        hdr[12:16], hdr[16:20] = d4, s4
        hdr[2:4] = struct.pack("!H", 20 + len(body))
        hdr[10:12] = b"\0\0"
        hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
        r.sendto(bytes(hdr + body), (src[0], 0))


threading.Thread(target=server, daemon=True).start()
threading.Thread(target=tep, daemon=True).start()
log(event="ready")
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "delete":
        with lock:
            todo = list(sessions)
            sessions.clear()
        for conn, v4, v6 in todo:
            try:
                bound.pop(v4, None)
                send_frame(conn, "200 Success", tunnel_xml("delete", v4, v6, 0))
                log(event="delete-sent", v4=v4)
            except OSError:
                pass
    elif cmd == "quit":
        break

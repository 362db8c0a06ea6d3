#!/usr/bin/env python3
"""A minimal DSTM server and TEP for testing dstm-client alone, in a
private network namespace, before or without the real dstmd and dstm-tep.

It speaks the DSTM profile of TSP (seed 001 appendix C, DESIGN 3.1) with
ANONYMOUS authentication, hands out a new address for every first create
with a short lifetime, and acts as the TEP with a raw IPPROTO_IPIP socket
and a TUN device behind which this namespace's own IPv4 stack plays the
"far" IPv4-only host, so that the client's whole data path is exercised
with real TCP, UDP and ICMP. Commands on stdin drive it: "delete" sends
the server's delete on every open session; "drop" cuts every session
(a server restart) but keeps the leases; "mute" makes it ignore every
further create (a lease then expires); "quit" stops. It logs one JSON line per event on
stdout (create, renew, delete-from-client, tunnelled packets).

usage: client_peer.py SERVER6 TEP6 TEP4 FAR4 POOL_FIRST LIFETIME [MORE_SERVER6...]

"redirect ADDR" answers every later create that reaches another address
than ADDR with status 1000 and a broker list naming ADDR.
"""
import fcntl
import ipaddress
import json
import os
import re
import select
import socket
import struct
import sys
import threading

SERVER6, TEP6, TEP4, FAR4, POOL_FIRST, LIFETIME = sys.argv[1:7]
LIFETIME = int(LIFETIME)
lock = threading.Lock()
sessions = []
next_addr = [int(ipaddress.IPv4Address(POOL_FIRST))]
bound = {}  # client IPv4 -> client IPv6
muted = [False]  # ignore creates (lets a lease expire)
redirect_to = [None]  # send creates reaching another address there


def log(**kw):
    with lock:
        print(json.dumps(kw), flush=True)


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
            if action == "create" and muted[0]:
                log(event="ignored-create")
                continue
            here = conn.getsockname()[0]
            if action == "create" and redirect_to[0] and here != redirect_to[0]:
                # DESIGN 3.1: status >= 1000 and a <broker> list
                log(event="redirected", to=redirect_to[0])
                send_frame(conn, "1000 Redirect",
                           '<tunnel action="info" type="v4v6"><broker>'
                           '<address type="ipv6">%s</address></broker></tunnel>'
                           % redirect_to[0])
                continue
            if action == "create":
                log_server = here
                if m:
                    v4 = m.group(1)
                    log(event="renew", v4=v4, v6=v6)
                else:
                    with lock:
                        v4 = str(ipaddress.IPv4Address(next_addr[0]))
                        next_addr[0] += 1
                    log(event="create", v4=v4, v6=v6, ll="fe80:" in xml, server=log_server)
                with lock:
                    bound[v4] = v6
                    if not m:
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


def server(addr):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 3653))
    s.listen(8)
    while True:
        c, _ = s.accept()
        threading.Thread(target=session, args=(c,), daemon=True).start()


def tep():
    """Decapsulate into a TUN device whose far side is this namespace's own
    IPv4 stack (FAR4 on lo): real TCP, UDP and ICMP answer. What the stack
    sends back to a bound client address is encapsulated toward its IPv6."""
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, 0x400454CA, struct.pack("16sH", b"far0", 0x0001 | 0x1000))
    os.system("ip link set far0 up mtu 1460 && ip addr add %s/32 dev lo && "
              "ip route add 192.0.2.0/24 dev far0 && "
              "sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.far0.rp_filter=0" % FAR4)
    r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
    r.bind((TEP6, 0))
    while True:
        rd, _, _ = select.select([r, tun], [], [])
        if r in rd:
            pkt, src = r.recvfrom(65535)
            s4 = socket.inet_ntoa(pkt[12:16])
            with lock:
                ok = bound.get(s4) == src[0]
            if not ok:
                log(event="spoofed", src6=src[0], src4=s4)
                continue
            os.write(tun, pkt)
        if tun in rd:
            pkt = os.read(tun, 65535)
            if pkt[0] >> 4 != 4:
                continue
            with lock:
                v6 = bound.get(socket.inet_ntoa(pkt[16:20]))
            if v6:
                r.sendto(pkt, (v6, 0))


for a in [SERVER6] + sys.argv[7:]:
    threading.Thread(target=server, args=(a,), daemon=True).start()
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
    elif cmd == "drop":
        # a server restart as the client sees it: every session cut,
        # the leases (and the TEP's bindings) kept
        with lock:
            todo = list(sessions)
            sessions.clear()
        for conn, v4, v6 in todo:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        log(event="dropped", sessions=len(todo))
    elif cmd.startswith("redirect "):
        redirect_to[0] = cmd.split()[1]
    elif cmd == "mute":
        muted[0] = True
    elif cmd == "quit":
        break

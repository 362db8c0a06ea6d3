#!/usr/bin/env python3
"""Probe: dstmd's memory under a Solicit flood (DESIGN §4, bounded state).

200,000 bare Solicits, each from a fresh random DUID and from a source
address in one of 10,000 /64s (raw Ethernet frames on a veth, so that no
address has to be configured), while a legitimate client at its own
address asks for a lease every 20,000 Solicits. Prints dstmd's resident
memory, the DHCPv6 engine's DUID table and evictions, the leases held and
the legitimate client's wait at each step. Figures only, never pass/fail.

What to expect: memory grows until the DUID table reaches dhcpv6.limits.clients
(16,384) and the offers fill what the offer hold lets them hold (at most half
the pool: 32,767 here; beyond that an Advertise reserves nothing), then stays.
The legitimate client completes its exchange at every step.

    sudo DSTM_BUILD=build python3 bench/dhcp6_flood_rss.py [--solicits N] [--nets N]
"""

import argparse
import ctypes
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("DSTM_BUILD", os.path.join(ROOT, "build"))
DSTMD = os.path.join(BUILD, "src/dstmd/dstmd")
SRV6, CLI6 = "fd00:f1::1", "fd00:f1::11"
IA_DSTM = 65001
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def sh(*a):
    subprocess.run(a, check=True, capture_output=True)


def in_netns(ns, fn):
    out = {}

    def run():
        fd = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:
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


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def solicit_frame(src_mac, src6, duid, rapid=False):
    body = struct.pack("!I", (1 << 24) | random.getrandbits(24)) + opt(1, duid) + \
        opt(8, b"\0\0") + opt(IA_DSTM, struct.pack("!III", 1, 0, 0))
    if rapid:
        body += opt(14)
    dst6 = socket.inet_pton(socket.AF_INET6, "ff02::1:2")
    ulen = 8 + len(body)
    pseudo = src6 + dst6 + struct.pack("!I3xB", ulen, 17)
    udp = struct.pack("!HHHH", 546, 547, ulen, 0) + body
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xffff) + udp[8:]
    ip = struct.pack("!IHBB", 6 << 28, ulen, 17, 1) + src6 + dst6
    return b"\x33\x33\x00\x01\x00\x02" + src_mac + b"\x86\xdd" + ip + udp


def granted(reply):
    """Whether a Reply's IA_DSTM holds an address and no error status."""
    i, data = 4, reply
    while i + 4 <= len(data):
        code, n = struct.unpack("!HH", data[i:i + 4])
        if code == IA_DSTM:
            sub, j, ok = data[i + 16:i + 4 + n], 0, False
            while j + 4 <= len(sub):
                c, m = struct.unpack("!HH", sub[j:j + 4])
                if c == 13 and struct.unpack("!H", sub[j + 4:j + 6])[0] != 0:
                    return False
                ok |= c == 5
                j += 4 + m
            return ok
        i += 4 + n
    return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ctl(sock, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(json.dumps({"version": 1, "command": command, "args": {}}).encode() + b"\n")
    reply = json.loads(s.makefile("rb").readline())
    s.close()
    return reply["result"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--solicits", type=int, default=200000)
    ap.add_argument("--nets", type=int, default=10000)
    ap.add_argument("--step", type=int, default=20000)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    tag = "fl%d" % os.getpid()
    ns_s, ns_c, vs, vc = tag + "-s", tag + "-c", tag + "s", tag + "c"
    tmp = tempfile.mkdtemp(prefix="dstm-flood-")
    proc = None
    try:
        sh("ip", "netns", "add", ns_s)
        sh("ip", "netns", "add", ns_c)
        sh("ip", "link", "add", vs, "netns", ns_s, "type", "veth", "peer", vc, "netns", ns_c)
        for ns, dev, addr in ((ns_s, vs, SRV6), (ns_c, vc, CLI6)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", addr + "/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        # Replies to the flood's sources leave through the client's side.
        sh("ip", "-n", ns_s, "-6", "route", "add", "default", "via", CLI6, "dev", vs)
        cfg = {"database": os.path.join(tmp, "leases.db"), "control": os.path.join(tmp, "ctl"),
               "lifetime": 600, "quarantine": 60, "user": "", "seccomp": False,
               "listen": [{"address": "[%s]:3653" % SRV6}],
               "pools": [{"name": "p", "prefixes": ["10.0.0.0/16"]}],
               "teps": [{"name": "t", "ipv6": "fd00:f1::2", "ipv4": "198.51.100.1"}],
               "limits": {"per_64": 16},
               "dhcpv6": {"interfaces": [vs], "offer_hold": 2}}
        with open(os.path.join(tmp, "dstmd.json"), "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(tmp, "dstmd.log"), "w")
        proc = subprocess.Popen(["ip", "netns", "exec", ns_s, DSTMD, "-d", "-c",
                                 os.path.join(tmp, "dstmd.json")], stdout=log, stderr=log)
        for _ in range(200):
            if os.path.exists(cfg["control"]):
                break
            time.sleep(0.05)
        else:
            sys.exit("dstmd did not start: " + open(os.path.join(tmp, "dstmd.log")).read())
        pid = proc.pid  # `ip netns exec` execs dstmd in place
        link = subprocess.run(["ip", "-n", ns_c, "link", "show", vc], capture_output=True,
                              text=True).stdout
        mac = bytes.fromhex(link.split("link/ether")[1].split()[0].replace(":", ""))
        raw = in_netns(ns_c, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
        raw.bind((vc, 0))
        legit = in_netns(ns_c, lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
        legit.bind((CLI6, 0))
        nets = [struct.pack("!HHHH", 0xfd00, 0xbad, i >> 16, i & 0xffff)
                for i in range(a.nets)]
        ifindex = in_netns(ns_c, lambda: socket.if_nametoindex(vc))

        def ask(k):
            duid = b"\0\3\0\1\2\0\0\0" + struct.pack("!H", k)
            frame_body = bytes.fromhex("01") + os.urandom(3) + opt(1, duid) + opt(8, b"\0\0") \
                + opt(IA_DSTM, struct.pack("!III", 1, 0, 0)) + opt(14)
            t0 = time.monotonic()
            legit.settimeout(0.5)
            for _ in range(4):
                legit.sendto(frame_body, ("ff02::1:2", 547, 0, ifindex))
                try:
                    while True:
                        r = legit.recv(4096)
                        if r[0] == 7 and r[1:4] == frame_body[1:4]:
                            return time.monotonic() - t0, granted(r)
                except socket.timeout:
                    continue
            return None, False

        print("dstmd %s: %d Solicits from random DUIDs across %d /64s (offer_hold 2 s, "
              "per_64 16, pool 10.0.0.0/16)" % (DSTMD, a.solicits, a.nets))
        print("%9s %9s %10s %10s %9s %10s %12s" % ("sent", "RSS_MiB", "duids_now", "evicted",
                                                   "leases", "rx_solicit", "legit_wait_s"))
        rss0 = rss_kib(pid)
        w, ok = ask(0)
        print("%9d %9.1f %10s %10s %9s %10s %12s" % (
            0, rss0 / 1024, "-", "-", "-", "-",
            "%.3f" % w if w is not None and ok else "refused" if w is not None else "none"))
        t0 = time.monotonic()
        sent = 0
        peak = rss0
        while sent < a.solicits:
            for _ in range(a.step):
                src = random.choice(nets) + os.urandom(8)
                duid = b"\0\4" + os.urandom(14)
                try:
                    raw.send(solicit_frame(mac, src, duid))
                except BlockingIOError:
                    time.sleep(0.001)
                sent += 1
            wait, ok = ask(sent // a.step)
            c = ctl(cfg["control"], "counters")
            r = rss_kib(pid)
            peak = max(peak, r)
            print("%9d %9.1f %10d %10d %9d %10d %12s" % (
                sent, r / 1024, c["dhcp6_clients_now"], c["dhcp6_evicted_clients"],
                c["lease_active"], c["dhcp6_rx_solicit"],
                "%.3f" % wait if wait is not None and ok else
                "refused" if wait is not None else "none"))
        secs = time.monotonic() - t0
        time.sleep(3)
        r = rss_kib(pid)
        print("flood took %.1f s (%.0f Solicits/s sent); RSS at start %.1f MiB, peak %.1f MiB, "
              "3 s after %.1f MiB" % (secs, a.solicits / secs, rss0 / 1024, peak / 1024,
                                      r / 1024))
        print("load: " + open("/proc/loadavg").read().strip())
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["ip", "netns", "del", ns_s], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_c], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The running dstm-tep in the lab (DESIGN §8): packets per second it moves
through its raw socket + TUN shell, decapsulation (c1 -> v4) and
encapsulation (v4 -> c1) separately, 64-byte inner UDP packets. A sender in
the client's (or the IPv4 host's) namespace blasts for a few seconds; the
rate is what the TEP's counters say it forwarded, divided by the time, next
to what was offered. Figures only: the senders share the machine's two
cores with the TEP, so when the TEP forwards less than is offered, that is
its ceiling on this machine.

    DSTM_BUILD=build [DSTM_LAB=NAME] bench/tep_lab_bench.py [SECONDS]

The lab is named $DSTM_LAB (default bench<pid>). Lines starting with
"BENCH " are for scripts/bench: the TEP's forwarded rate beside what the
sender offered (the sender's own ceiling on this machine).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lab"))

from lab import TEP6, V44, Lab, client_ipv6  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0

DECAP_SENDER = r"""
import socket, struct, sys, time
src6, src4, dst4, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def csum(b):
    s = sum(struct.unpack("!10H", b))
    s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 64, 0, 0, 64, 17, 0,
                  socket.inet_aton(src4), socket.inet_aton(dst4))
hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
pkt = hdr + struct.pack("!HHHH", 5000, 9, 44, 0) + b"\0" * 36
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_IPIP)
s.bind((src6, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
n, end, dst = 0, time.monotonic() + secs, ("TEP6", 0)
while time.monotonic() < end:
    for _ in range(256):
        try:
            s.sendto(pkt, dst); n += 1
        except OSError:
            time.sleep(0.0001)
print(n)
""".replace("TEP6", TEP6)

ENCAP_SENDER = r"""
import socket, sys, time
dst4, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
pkt, n, end = b"\0" * 36, 0, time.monotonic() + secs
while time.monotonic() < end:
    for _ in range(256):
        try:
            s.sendto(pkt, (dst4, 9)); n += 1
        except OSError:
            time.sleep(0.0001)
print(n)
"""


def tun_dropped(lab):
    """Packets the kernel dropped at the TUN device's queue (the TEP did not read them)."""
    r = lab.exec("tep", "cat", "/sys/class/net/dstm4/statistics/tx_dropped", check=True)
    return int(r.stdout)


def rate(lab, node, script, args, counter):
    before = lab.ctl("tep", "counters")
    tun_before = tun_dropped(lab)
    t0 = time.monotonic()
    r = lab.exec(node, "python3", "-c", script, *args, str(SECONDS),
                 timeout=SECONDS + 30, check=True)
    dt = time.monotonic() - t0
    time.sleep(0.3)  # let the TEP drain what is queued
    after = lab.ctl("tep", "counters")
    offered = int(r.stdout.strip())
    done = after[counter] - before[counter]
    drops = {k: after[k] - before[k] for k in after
             if k.startswith(("drop_", "tx_")) and after[k] != before[k]}
    if tun_dropped(lab) != tun_before:
        drops["kernel: dropped at the TUN queue"] = tun_dropped(lab) - tun_before
    return offered / dt, done / dt, drops


def main():
    lab = Lab(name=os.environ.get("DSTM_LAB") or "bench%d" % os.getpid())
    try:
        lab.up(clients=1)
        c1 = client_ipv6(1)
        c1v4 = next(b["ipv4"] for b in lab.ctl("tep", "bindings") if b["ipv6"] == c1)
        print("dstm-tep in the lab: raw IPv6 socket + TUN, 64-byte inner UDP, %.0f s a case"
              % SECONDS)
        for path, node, script, args, counter in (
                ("decap", "c1", DECAP_SENDER, [c1, c1v4, V44], "decap_pkts"),
                ("encap", "v4", ENCAP_SENDER, [c1v4], "encap_pkts")):
            load = os.getloadavg()[0]
            off, fwd, drops = rate(lab, node, script, args, counter)
            print("%s  offered %8.0f pps  forwarded %8.0f pps  %s" % (path, off, fwd, drops))
            print("BENCH " + json.dumps({
                "name": "TEP %s pps (lab, 64 B)" % path, "ours": round(fwd), "peer": round(off),
                "unit": "pps", "peer_name": "offered by the sender",
                "load": round((load + os.getloadavg()[0]) / 2, 2),
                "note": "raw socket + TUN"}))
    finally:
        lab.down()


if __name__ == "__main__":
    main()

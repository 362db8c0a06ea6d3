#!/usr/bin/python3
"""dstm-tep's two data planes in the lab, side by side in one run: packets
per second that reach the far end for 64-byte inner UDP packets,
decapsulation (a host on the IPv6 bridge -> the IPv4 host) and
encapsulation (the IPv4 host -> that host), with the XDP data plane and
with the TUN one, next to plain veth forwarding of the same 64-byte IPv4
packets through a router namespace on the same machine, by the kernel and
by a minimal XDP program (bench/xdp_fwd.bpf.c: fib lookup, TTL, redirect):
what these veths carry at best. The baseline has the lab's shape: sender,
bridge, router, receiver, all veths. Figures only, never pass/fail.

The sender is bench/pkt_send.c (AF_PACKET, sendmmsg batches, qdisc
bypassed), not Python, so that it is not what limits a run. The host on
the bridge is a namespace of the benchmark's own (fd00:d57::99, a static
binding of 192.0.2.200 made with `binding-add`), so no dstm-client works in
the measurement. The rate is what the receiving interface counted,
divided by the sending time; the TEP's own forwarded count is shown beside
it. Each case runs three times: median, min-max. The machine's 2 cores are
shared by the sender, the TEP and the receiver (and by other users: the
load is printed before and after). Three passes: one sender (pinned to
core 0); two (one a core); one sender with the NAPI polling of the veths
that run XDP moved into kernel threads, so that forwarding can use the
core the sender leaves, as a NIC interrupt on another core would (on
veth the XDP work otherwise runs in the sender's own softirq).

    DSTM_BUILD=build bench/xdp_lab_bench.py [SECONDS]
"""

import json
import os
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lab"))

from lab import TEP6, V44, Lab  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
RUNS = 3
BX6 = "fd00:d57::99"
BX4 = "192.0.2.200"


def sh(*cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


def nsx(ns, *cmd, check=True):
    return sh("ip", "netns", "exec", ns, *cmd, check=check)


def link(ns, ifname):
    return json.loads(sh("ip", "-n", ns, "-j", "-s", "link", "show", "dev", ifname))[0]


def mac(ns, ifname):
    return bytes.fromhex(link(ns, ifname)["address"].replace(":", ""))


def rx(ns, ifname):
    return link(ns, ifname)["stats64"]["rx"]["packets"]


def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip4(src, dst):
    """64 bytes of IPv4 + UDP (checksum 0) src:10000 -> dst:9."""
    import socket
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 64, 0, 0, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + struct.pack("!HHHH", 10000, 9, 44, 0) + bytes(36)


def ip6(src, dst, payload):
    import socket
    return (struct.pack("!IHBB", 6 << 28, len(payload), 4, 64) + socket.inet_pton(
        socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + payload)


def eth(dst, src, proto, payload):
    return dst + src + struct.pack("!H", proto) + payload


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Bench:
    def __init__(self, build, senders, threaded=False):
        self.build = build
        self.senders = senders
        self.threaded = threaded
        self.sender = os.path.join(build, "src/xdp/pkt-send")
        self.rows = []

    def blast(self, ns, ifname, frame, rx_ns, rx_if, counter=None):
        """Send `frame` for SECONDS from ns/ifname RUNS times; pps at rx_ns/rx_if."""
        got, sent, fwd = [], [], []
        for _ in range(RUNS):
            c0 = counter() if counter else 0
            r0 = rx(rx_ns, rx_if)
            procs = [subprocess.Popen(
                ["ip", "netns", "exec", ns, "taskset", "-c", str(i % os.cpu_count()),
                 self.sender, ifname, frame.hex(), str(SECONDS), "-p", "64"],
                stdout=subprocess.PIPE, text=True) for i in range(self.senders)]
            n = sum(int(p.communicate()[0]) for p in procs)
            time.sleep(0.5)
            got.append((rx(rx_ns, rx_if) - r0) / SECONDS)
            sent.append(n / SECONDS)
            if counter:
                fwd.append((counter() - c0) / SECONDS)
        return got, sent, fwd

    def row(self, name, got, sent, fwd):
        med = statistics.median(got)
        self.rows.append((name, med))
        name = "%s, %d sender%s%s" % (name, self.senders, "s" if self.senders > 1 else "",
                                      ", threaded NAPI" if self.threaded else "")
        print("%-45s %10.0f  %10.0f-%-10.0f sent %10.0f%s" % (
            name, med, min(got), max(got), statistics.median(sent),
            "  TEP forwarded %.0f" % statistics.median(fwd) if fwd else ""), flush=True)

    def napi_threads(self, ns, *ifs):
        """Run the NAPI polling (XDP included) of these veths in kernel threads,
        which the scheduler may put on the core the sender does not use, as a
        NIC's interrupt would be; veth polls only with an XDP program attached."""
        for i in ifs:
            nsx(ns, "sh", "-c", "echo 1 > /sys/class/net/%s/threaded" % i, check=False)

    # -- the TEP in the lab

    def tep(self, dataplane):
        lab = Lab(name="xb%d" % os.getpid(), build=self.build)
        bx = lab.netns("bx")
        try:
            lab.up(clients=1, dataplane=dataplane)
            got = lab.ctl("tep", "status")["dataplane"]
            if got != dataplane:
                print("tep: asked for %s, runs %s" % (dataplane, got))
            sh("ip", "netns", "add", bx)
            sh("ip", "-n", lab.netns("sw"), "link", "add", "bx", "type", "veth", "peer",
               "name", "eth0", "netns", bx)
            sh("ip", "-n", lab.netns("sw"), "link", "set", "bx", "master", "dstm6", "up")
            nsx(bx, "ip", "addr", "add", BX6 + "/64", "dev", "eth0", "nodad")
            nsx(bx, "ip", "link", "set", "eth0", "up")
            nsx(bx, "ip", "link", "set", "lo", "up")
            lab.ctl("tep", "binding-add", ipv4=BX4, ipv6=BX6)
            # Neighbours known both ways before the first packet.
            nsx(bx, "ping", "-6", "-c", "1", "-W", "2", TEP6, check=False)
            lab.exec("tep", "ping", "-c", "1", "-W", "2", V44)
            if self.threaded:
                self.napi_threads(lab.netns("tep"), "eth0", "v4")
            tep_mac, bx_mac = mac(lab.netns("tep"), "eth0"), mac(bx, "eth0")
            tep4_mac, v4_mac = mac(lab.netns("tep"), "v4"), mac(lab.netns("v4"), "eth0")

            def ctr(name):
                return lambda: lab.ctl("tep", "counters")[name]

            decap = eth(tep_mac, bx_mac, 0x86dd, ip6(BX6, TEP6, ip4(BX4, V44)))
            self.row("TEP %s decap (bridge -> v4)" % dataplane,
                     *self.blast(bx, "eth0", decap, lab.netns("v4"), "eth0", ctr("decap_pkts")))
            encap = eth(tep4_mac, v4_mac, 0x0800, ip4(V44, BX4))
            self.row("TEP %s encap (v4 -> bridge)" % dataplane,
                     *self.blast(lab.netns("v4"), "eth0", encap, bx, "eth0",
                                 ctr("encap_pkts")))
        finally:
            subprocess.run(["ip", "netns", "del", bx], stderr=subprocess.DEVNULL)
            lab.down()

    # -- plain veth forwarding: pa -> pr -> pb

    def plain(self, how):
        pre = "xb%d" % os.getpid()
        pa, ps, pr, pb = pre + "-pa", pre + "-ps", pre + "-pr", pre + "-pb"
        try:
            for ns in (pa, ps, pr, pb):
                sh("ip", "netns", "add", ns)
                nsx(ns, "ip", "link", "set", "lo", "up")
            # The lab's shape: the sender reaches the router through a bridge.
            sh("ip", "-n", ps, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", ps, "link", "add", "pa", "type", "veth", "peer", "name", "eth0",
               "netns", pa)
            sh("ip", "-n", ps, "link", "add", "pr", "type", "veth", "peer", "name", "ra",
               "netns", pr)
            for i in ("br0", "pa", "pr"):
                if i != "br0":
                    sh("ip", "-n", ps, "link", "set", i, "master", "br0")
                sh("ip", "-n", ps, "link", "set", i, "up")
            sh("ip", "-n", pr, "link", "add", "rb", "type", "veth", "peer", "name", "eth0",
               "netns", pb)
            # RFC 2544's benchmarking range.
            nsx(pa, "ip", "addr", "add", "198.18.1.2/24", "dev", "eth0")
            nsx(pr, "ip", "addr", "add", "198.18.1.1/24", "dev", "ra")
            nsx(pr, "ip", "addr", "add", "198.18.2.1/24", "dev", "rb")
            nsx(pb, "ip", "addr", "add", "198.18.2.2/24", "dev", "eth0")
            for ns, ifs in ((pa, ["eth0"]), (pr, ["ra", "rb"]), (pb, ["eth0"])):
                for i in ifs:
                    nsx(ns, "ip", "link", "set", i, "up")
            nsx(pa, "ip", "route", "add", "default", "via", "198.18.1.1")
            nsx(pb, "ip", "route", "add", "default", "via", "198.18.2.1")
            nsx(pr, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            if how == "xdp":
                obj = os.path.join(self.build, "src/xdp")
                sh("ip", "-n", pr, "link", "set", "dev", "ra", "xdpdrv", "obj",
                   obj + "/xdp_fwd.bpf.o", "sec", "xdp")
                sh("ip", "-n", pb, "link", "set", "dev", "eth0", "xdpdrv", "obj",
                   obj + "/xdp_pass.bpf.o", "sec", "xdp")
            if self.threaded:
                self.napi_threads(pr, "ra")
            nsx(pa, "ping", "-c", "1", "-W", "2", "198.18.2.2", check=False)
            frame = eth(mac(pr, "ra"), mac(pa, "eth0"), 0x0800, ip4("198.18.1.2", "198.18.2.2"))
            self.row("plain veth, %s forwarding" % ("XDP" if how == "xdp" else "kernel"),
                     *self.blast(pa, "eth0", frame, pb, "eth0"))
        finally:
            for ns in (pa, ps, pr, pb):
                subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def main():
    build = os.environ.get("DSTM_BUILD") or "build"
    build = os.path.abspath(build)
    print("xdp_lab_bench: 64-byte inner UDP packets, %d runs of %.0f s a case, median pps at "
          "the receiver (min-max), load %s" % (RUNS, SECONDS, load()), flush=True)
    print("%-45s %10s  %21s" % ("case", "pps", "min-max"))
    # One sender pinned to each core: on veth the whole chain (send, the
    # TEP's XDP or the kernel's forwarding, receive) runs in the sending
    # core's softirq, so one sender measures one core and two the machine;
    # the TUN data plane is one userspace thread either way.
    for senders, threaded in ((1, False), (2, False), (1, True)):
        b = Bench(build, senders, threaded)
        b.plain("kernel")
        b.plain("xdp")
        b.tep("xdp")
        b.tep("tun")
        r = dict(b.rows)
        for d, way in (("decap", "bridge -> v4"), ("encap", "v4 -> bridge")):
            x, t = r["TEP xdp %s (%s)" % (d, way)], r["TEP tun %s (%s)" % (d, way)]
            print("  %d sender%s%s, %s: XDP / TUN = %.1fx; XDP TEP / plain veth: %.0f %% of XDP "
                  "forwarding, %.0f %% of kernel forwarding"
                  % (senders, "s" if senders > 1 else "",
                     ", threaded NAPI" if threaded else "", d, x / t,
                     100 * x / r["plain veth, XDP forwarding"],
                     100 * x / r["plain veth, kernel forwarding"]), flush=True)
    print("load after: %s" % load())

if __name__ == "__main__":
    main()

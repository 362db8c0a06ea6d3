#!/usr/bin/python3
"""dstm-tep's three data planes in the lab, side by side in one run: packets
per second that reach the far end for 64-byte inner UDP packets,
decapsulation (a host on the IPv6 bridge -> the IPv4 host) and
encapsulation (the IPv4 host -> that host), with the XDP data plane, the
TUN one and the tc one, next to plain veth forwarding of the same 64-byte IPv4
packets through a router namespace on the same machine, by the kernel and
by a minimal XDP program (bench/xdp_fwd.bpf.c: fib lookup, TTL, redirect):
what these veths carry at best. The baseline has the lab's shape: sender,
bridge, router, receiver, all veths. Figures only, never pass/fail.

The sender is bpf-send (bench/bpf_send.c): a tc program run by
BPF_PROG_TEST_RUN that hands clones of a prebuilt frame to the sending veth
with bpf_clone_redirect, 64 UDP source ports in turn, with no system call or
copy per frame. Into a veth whose peer drops in XDP, on one core of this
loaded machine (3 runs of 3 s), it offered 1.9-3.1 Mpps where pkt-send
(AF_PACKET, sendmmsg, qdisc bypassed) offered 0.8-1.4 Mpps; 2.4-3.7 Mpps
against 0.4-0.5 with the peer's NAPI threaded. (XDP's live-frames test run,
xdp-trafficgen's way, is refused by this kernel with EPERM.) If bpf-send
cannot send, the bench says so and uses pkt-send; `--sender packet` asks
for pkt-send. The receivers (the IPv4 host's and the bridge host's eth0,
the plain baseline's far end) drop the bench's frames in XDP
(bench/xdp_sink.bpf.c) and pass the rest, so the far end is measured at its
interface, as a generator's port counts, and not the host stack that would
answer each frame with a port unreachable (`--receiver stack` keeps the
stacks). The host on the bridge is a namespace of the benchmark's own
(fd00:d57::99, a static binding of 192.0.2.200 made with `binding-add`), so
no dstm-client works in the measurement.

The rate is what the receiving interface counted, divided by the sending
time; the TEP's own forwarded count is shown beside it, and "offered" is
what the senders handed to the veth plus what it refused (its peer's ring
full). The machine's 2 cores are shared by the sender, the TEP and the
receiver, and by other users: so the five set-ups (the lab with XDP, with
TUN and with tc, the two plain routers) are all up at once and their cases
are interleaved, one run of each per round, three rounds: each figure is
the median of its three runs (min-max beside it), each ratio the median of
the three rounds' ratios, and the load is printed before and after. Three
passes, each sender pinned to a core: one sender; two (one a core); one
sender with the NAPI polling of the veths that run the TEP's or the
router's XDP moved into kernel threads. On a veth the receiving side's work
runs in the sender's own softirq: in the one-sender pass one core carries
the frame through the whole path (bpf_clone_redirect, the bridge, the TEP
or router, the receiver), so there offered equals received and the figure
is what one core does with the path, not the sender's ceiling. With
threaded NAPI the TEP's or router's XDP (and what it redirects to) runs in
a kernel thread that the scheduler puts on the other core, against the
machine's other work; the kernel-forwarding and TUN cases get no such
thread (their veths have no NAPI), only the TEP process itself.

Lines starting with "BENCH " are for scripts/bench (`--only xdp`): per pass
and direction, the XDP TEP's median against the TUN TEP's and against plain
XDP forwarding, and the tc TEP's against the XDP TEP's, from the same run.

    DSTM_BUILD=build [DSTM_LAB=NAME] bench/xdp_lab_bench.py [SECONDS]
        [--sender bpf|packet] [--receiver sink|stack]

The labs are named $DSTM_LAB (default xb<pid>) with x, t or c after it, the
plain set-ups' namespaces $DSTM_LAB then pk- or px-.
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lab"))

from lab import TEP6, V44, Lab  # noqa: E402

RUNS = 3
SECONDS = 3.0
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


class Setup:
    """One thing to measure: a sender, a frame, a receiving interface."""

    def __init__(self, bench):
        self.bench = bench
        self.cases = {}  # name -> (ns, ifname, frame, rx_ns, rx_if, counter)
        self.napi = []   # (ns, ifname): veths that run XDP

    def threaded(self, on):
        for ns, i in self.napi:
            nsx(ns, "sh", "-c", "echo %d > /sys/class/net/%s/threaded" % (on, i), check=False)

    def run(self, name, senders, seconds=None):
        """One run of a case: (pps received, pps offered, pps the TEP forwarded)."""
        ns, ifname, frame, rx_ns, rx_if, counter = self.cases[name]
        secs = seconds or SECONDS
        c0 = counter() if counter else 0
        r0 = rx(rx_ns, rx_if)
        procs = [subprocess.Popen(
            ["ip", "netns", "exec", ns, "taskset", "-c", str(i % os.cpu_count()),
             self.bench.sender, ifname, frame.hex(), str(secs), "-p", "64"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(senders)]
        offered = 0
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError("%s: exit %d: %s" % (self.bench.sender, p.returncode,
                                                         err.strip()))
            # pkt-send: frames sent; bpf-send: frames taken, frames refused.
            offered += sum(int(x) for x in out.split())
        time.sleep(0.5)
        return ((rx(rx_ns, rx_if) - r0) / secs, offered / secs,
                (counter() - c0) / secs if counter else None)


class TepLab(Setup):
    """The lab with one data plane, a host of the bench's own on its bridge."""

    def __init__(self, bench, dataplane):
        super().__init__(bench)
        self.dataplane = dataplane
        self.lab = Lab(name=bench.prefix + {"xdp": "x", "tun": "t", "tc": "c"}[dataplane],
                       build=bench.build)
        self.bx = self.lab.netns("bx")

    def up(self):
        lab, bx = self.lab, self.bx
        lab.up(clients=1, dataplane=self.dataplane)
        got = lab.ctl("tep", "status")["dataplane"]
        if got != self.dataplane:
            print("tep: asked for %s, runs %s" % (self.dataplane, got))
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
        tep, v4 = lab.netns("tep"), lab.netns("v4")
        if self.dataplane == "xdp":
            self.napi = [(tep, "eth0"), (tep, "v4")]

        def ctr(name):
            return lambda: lab.ctl("tep", "counters")[name]

        self.cases["decap"] = (bx, "eth0", eth(mac(tep, "eth0"), mac(bx, "eth0"), 0x86dd,
                                               ip6(BX6, TEP6, ip4(BX4, V44))),
                               v4, "eth0", ctr("decap_pkts"))
        self.cases["encap"] = (v4, "eth0", eth(mac(tep, "v4"), mac(v4, "eth0"), 0x0800,
                                               ip4(V44, BX4)),
                               bx, "eth0", ctr("encap_pkts"))
        self.bench.sink(v4, "eth0")
        self.bench.sink(bx, "eth0")

    def down(self):
        subprocess.run(["ip", "netns", "del", self.bx], stderr=subprocess.DEVNULL)
        self.lab.down()


class Plain(Setup):
    """pa -> bridge -> pr -> pb, all veths; pr forwards with the kernel or XDP."""

    def __init__(self, bench, how):
        super().__init__(bench)
        self.how = how
        pre = bench.prefix + "p" + how[0]
        self.ns = [pre + "-pa", pre + "-ps", pre + "-pr", pre + "-pb"]

    def up(self):
        pa, ps, pr, pb = self.ns
        for ns in self.ns:
            sh("ip", "netns", "add", ns)
            nsx(ns, "ip", "link", "set", "lo", "up")
        # The lab's shape: the sender reaches the router through a bridge (as
        # scripts/lab makes dstm6).
        sh("ip", "-n", ps, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        # As scripts/lab's switch: no netfilter calls from the bridge.
        nsx(ps, "sysctl", "-qew", "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0")
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
        if self.how == "xdp":
            obj = os.path.join(self.bench.build, "src/xdp")
            sh("ip", "-n", pr, "link", "set", "dev", "ra", "xdpdrv", "obj",
               obj + "/xdp_fwd.bpf.o", "sec", "xdp")
            sh("ip", "-n", pb, "link", "set", "dev", "eth0", "xdpdrv", "obj",
               obj + "/xdp_pass.bpf.o", "sec", "xdp")
            self.napi = [(pr, "ra")]
        self.bench.sink(pb, "eth0")
        nsx(pa, "ping", "-c", "1", "-W", "2", "198.18.2.2", check=False)
        self.cases["fwd"] = (pa, "eth0", eth(mac(pr, "ra"), mac(pa, "eth0"), 0x0800,
                                             ip4("198.18.1.2", "198.18.2.2")),
                             pb, "eth0", None)

    def down(self):
        for ns in self.ns:
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


SENDERS = {"bpf": ("bench/bpf-send", "bpf-send (a tc program's test runs, bpf_clone_redirect)"),
           "packet": ("src/xdp/pkt-send", "pkt-send (AF_PACKET, sendmmsg, qdisc bypassed)")}


class Bench:
    def __init__(self, build, sender, receiver="sink"):
        self.build = build
        self.prefix = os.environ.get("DSTM_LAB") or "xb%d" % os.getpid()
        self.receiver = receiver
        self.use(sender)

    def sink(self, ns, ifname):
        """The far end drops the bench's frames in XDP (bench/xdp_sink.bpf.c)."""
        if self.receiver == "sink":
            sh("ip", "-force", "-n", ns, "link", "set", "dev", ifname, "xdpdrv", "obj",
               os.path.join(self.build, "bench/xdp_sink.bpf.o"), "sec", "xdp")

    def use(self, sender):
        self.kind = sender
        self.sender = os.path.join(self.build, SENDERS[sender][0])
        self.what = SENDERS[sender][1]

    def probe(self, setup, case):
        """bpf-send where the kernel lets it send, else pkt-send (said so)."""
        if self.kind != "bpf":
            return
        try:
            got = setup.run(case, 1, seconds=0.3)[0]
            if got > 0:
                return
            why = "nothing arrived"
        except (RuntimeError, OSError, ValueError) as e:
            why = str(e)
        print("bpf-send does not send here (%s): pkt-send instead" % why)
        self.use("packet")


def bench_line(name, ours, peer, peer_name, load_avg, note):
    print("BENCH " + json.dumps({"name": name, "ours": round(ours), "peer": round(peer),
                                 "unit": "pps", "peer_name": peer_name,
                                 "load": load_avg, "note": note}), flush=True)


def main():
    global SECONDS
    ap = argparse.ArgumentParser(description="dstm-tep's XDP and TUN data planes in the lab "
                                 "beside plain veth forwarding")
    ap.add_argument("seconds", nargs="?", type=float, default=SECONDS,
                    help="length of one run (default 3)")
    ap.add_argument("--sender", choices=sorted(SENDERS), default="bpf",
                    help="bpf: bpf-send, falling back to pkt-send if it cannot send; "
                    "packet: pkt-send (AF_PACKET)")
    ap.add_argument("--receiver", choices=("sink", "stack"), default="sink",
                    help="sink: the far ends drop the bench's frames in XDP (default); "
                    "stack: their host stacks take them (and answer port unreachable)")
    a = ap.parse_args()
    SECONDS = a.seconds
    build = os.path.abspath(os.environ.get("DSTM_BUILD") or "build")
    b = Bench(build, a.sender, a.receiver)
    kernel, xfwd = Plain(b, "kernel"), Plain(b, "xdp")
    txdp, ttun, ttc = TepLab(b, "xdp"), TepLab(b, "tun"), TepLab(b, "tc")
    setups = [kernel, xfwd, txdp, ttun, ttc]
    cases = [("plain veth, kernel forwarding", kernel, "fwd"),
             ("plain veth, XDP forwarding", xfwd, "fwd"),
             ("TEP xdp decap (bridge -> v4)", txdp, "decap"),
             ("TEP tun decap (bridge -> v4)", ttun, "decap"),
             ("TEP tc decap (bridge -> v4)", ttc, "decap"),
             ("TEP xdp encap (v4 -> bridge)", txdp, "encap"),
             ("TEP tun encap (v4 -> bridge)", ttun, "encap"),
             ("TEP tc encap (v4 -> bridge)", ttc, "encap")]
    try:
        for st in setups:
            st.up()
        b.probe(kernel, "fwd")
        print("xdp_lab_bench: 64-byte inner UDP packets, %d rounds of %g s runs, the cases "
              "interleaved; pps at the receiver, median (min-max), and offered by the "
              "sender; load %s" % (RUNS, SECONDS, load()))
        print("sender: %s, pinned to a core each; receivers: %s" % (
            b.what, "drop the frames in XDP (bench/xdp_sink.bpf.c)" if b.receiver == "sink"
            else "host stacks"), flush=True)
        for senders, threaded in ((1, False), (2, False), (1, True)):
            label = "%d sender%s%s" % (senders, "s" if senders > 1 else "",
                                       ", threaded NAPI" if threaded else "")
            for st in setups:
                st.threaded(1 if threaded else 0)
            res = {name: [] for name, _, _ in cases}
            load0 = os.getloadavg()[0]
            for _ in range(RUNS):
                for name, st, case in cases:
                    res[name].append(st.run(case, senders))
            print("-- %s" % label)
            for name, _, _ in cases:
                got = [r[0] for r in res[name]]
                sent = [r[1] for r in res[name]]
                fwd = [r[2] for r in res[name] if r[2] is not None]
                print("%-32s %10.0f  %9.0f-%-9.0f offered %9.0f%s" % (
                    name, statistics.median(got), min(got), max(got), statistics.median(sent),
                    "  TEP forwarded %.0f" % statistics.median(fwd) if fwd else ""))
            load_avg = round((load0 + os.getloadavg()[0]) / 2, 2)
            for d, way in (("decap", "bridge -> v4"), ("encap", "v4 -> bridge")):
                x = [r[0] for r in res["TEP xdp %s (%s)" % (d, way)]]
                t = [r[0] for r in res["TEP tun %s (%s)" % (d, way)]]
                c = [r[0] for r in res["TEP tc %s (%s)" % (d, way)]]
                k = [r[0] for r in res["plain veth, kernel forwarding"]]
                f = [r[0] for r in res["plain veth, XDP forwarding"]]
                ratio = statistics.median
                print("   %s: XDP / TUN %.1fx; XDP TEP / plain veth: %.0f %% of XDP forwarding, "
                      "%.0f %% of kernel forwarding (medians of the rounds' ratios)"
                      % (d, ratio([a / c for a, c in zip(x, t)]),
                         100 * ratio([a / c for a, c in zip(x, f)]),
                         100 * ratio([a / c for a, c in zip(x, k)])), flush=True)
                name = "TEP xdp %s pps (lab, 64 B, %s)" % (d, label)
                note = "sender %s, receiver %s" % (b.kind, b.receiver)
                bench_line(name + " vs TUN", statistics.median(x), statistics.median(t),
                           "TEP tun, same run", load_avg, note)
                bench_line(name + " vs veth", statistics.median(x), statistics.median(f),
                           "plain veth, XDP forwarding, same run", load_avg, note)
                bench_line("TEP tc %s pps (lab, 64 B, %s) vs XDP" % (d, label),
                           statistics.median(c), statistics.median(x), "TEP xdp, same run",
                           load_avg, note)
        print("load after: %s" % load())
    finally:
        for st in setups:
            try:
                st.down()
            except Exception as e:  # keep taking the rest down
                print("down: %s" % e)


if __name__ == "__main__":
    main()

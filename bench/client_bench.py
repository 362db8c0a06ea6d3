#!/usr/bin/env python3
"""Figures of dstm-client (printed, never pass/fail):

  on-demand   milliseconds from the first IPv4 packet (a UDP datagram sent
              with no lease) to its reply: DTI queue, TSP session, create,
              address and routes, flush, TEP and back;
  throughput  TCP through the tunnel against plain IPv6 on the same veth
              (iperf3, a ratio);
  cpu         the client's CPU seconds per gigabit it carried; with --lab
              also the whole machine's (every core's busy time from
              /proc/stat, both ends and the path between), tunnel against
              plain IPv6: with the client's kernel fast path the client
              process does no per-packet work at all, and the tunnel's
              cost is in the kernel, in whoever's context it runs.

With --lab the figures come from the namespace lab of scripts/lab (real
dstmd and dstm-tep; plain IPv6 is c1 to srv across the same bridge,
the tunnel c1 to v4). Without it the peer is tests/lab/client_peer.py (a
TSP server and a TEP in Python), so the throughput ratio is bounded by
that TEP, not by the client. The CPU per gigabit is the client's own
(with the kernel work done in its context, veth delivery included). Runs
as root, a few seconds each.

With --lab the throughput runs both ways (iperf3 and iperf3 -R), tunnel
and plain IPv6 alternately, --runs times each, and prints the median with
the spread (min-max) and the load average before and after.
With --lab the lab is named $DSTM_LAB (default bench<pid>), and lines
starting with "BENCH " give scripts/bench the tunnel's TCP rate beside
plain IPv6's.

With --lab --fast-path off the clients run without their kernel fast
path ("fast_path": "off", the userspace TUN path only); on (the default)
is the lab's "auto". With it on, dstm-client turns transmit checksumming
off on its veth (dstm-client(8)); the plain IPv6 baseline is measured with
it on again, as the lab sets the veth up, so that the baseline is not
slowed by what the tunnel needs.

With --lab --dataplane tc (the TEP's tc programs, which keep GSO packets
whole and the kernel's checksum state with them) the tunnel runs leave
checksums to the device on c1's veth and on the IPv4 host's, as NICs do:
the XDP and TUN TEPs cannot take that on a veth (they read the unfinished
checksum), so the client turns it off and so does the lab; the tc plane
can, and this is what it is for.

With --lab --tep-napi threaded the TEP's interfaces run their NAPI in a
kernel thread (/sys/class/net/IF/threaded). With an XDP TEP on veths the
sender's core otherwise carries every frame from the client's socket to
the IPv4 host's (segmentation, XDP, redirect, delivery) while the other
core idles; in a thread the TEP's part moves to the idle core. The plain
IPv6 baseline does not cross the TEP, so it is unchanged by this. Without
XDP a veth runs no NAPI and the setting changes nothing.

usage: DSTM_BUILD=build bench/client_bench.py [--lab [--dataplane tun|xdp|tc|auto]
       [--throughput-only] [--offload on|off|both] [--fast-path on|off|both]
       [--tep-napi default|threaded]]
       [--seconds N] [--runs N]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lab"))


def clk_tck():
    return os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """Busy time of every core so far (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / clk_tck()


def cpu_seconds(pid):
    """utime + stime of a process and its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clk_tck()


def client_pid(bed):
    # `ip netns exec` execs the program: the Popen pid is dstm-client's.
    return bed.client.pid


def on_demand_ms(tmp, runs):
    # The test bed needs pytest (tests/lab); --lab needs only python3.
    from test_client import FAR4, Bed
    out = []
    for i in range(runs):
        d = os.path.join(tmp, "od%d" % i)
        os.mkdir(d)
        b = Bed(d, mode="on-demand")
        try:
            time.sleep(0.3)
            srv = subprocess.Popen(["ip", "netns", "exec", b.p, "python3", "-c",
                                    "import socket\n"
                                    "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                    "u.bind(('%s',7)); u.settimeout(5)\n"
                                    "d,a=u.recvfrom(100); u.sendto(d,a)\n" % FAR4])
            time.sleep(0.3)
            r = b.cns("python3", "-c",
                      "import socket,time\n"
                      "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(5)\n"
                      "t0=time.perf_counter(); u.sendto(b'x',('%s',7)); u.recv(10)\n"
                      "print((time.perf_counter()-t0)*1000)\n" % FAR4)
            srv.wait(5)
            out.append(float(r.stdout))
        finally:
            b.close()
    return out


def iperf(bed, target, seconds, bind=None):
    srv = subprocess.Popen(["ip", "netns", "exec", bed.p, "iperf3", "-s", "-1", "-B", target],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        cmd = ["iperf3", "-J", "-c", target, "-t", str(seconds)]
        r = bed.cns(*cmd, timeout=seconds + 20)
    finally:
        srv.wait(10)
    j = json.loads(r.stdout)
    return j["end"]["sum_received"]["bits_per_second"], j["end"]["sum_received"]["bytes"]


def lab_iperf(lab, server_node, target, seconds, reverse=False):
    srv = subprocess.Popen(["ip", "netns", "exec", lab.netns(server_node), "iperf3", "-s", "-1",
                            "-B", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        cmd = ["iperf3", "-J", "-c", target, "-t", str(seconds)] + (["-R"] if reverse else [])
        r = lab.exec("c1", *cmd, timeout=seconds + 20)
    finally:
        srv.wait(10)
    j = json.loads(r.stdout)
    return j["end"]["sum_received"]["bits_per_second"], j["end"]["sum_received"]["bytes"]


def median_spread(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2], xs[0], xs[-1]


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tx_csum(lab, on):
    """c1's veth transmit checksumming (the fast path turns it off)."""
    lab.exec("c1", "ethtool", "-K", "eth0", "tx", "on" if on else "off", check=True)


def tep_napi_threaded(lab):
    """The TEP's interfaces' NAPI in kernel threads (see --tep-napi)."""
    lab.exec("tep", "sh", "-c", "for f in /sys/class/net/*/threaded; do "
             "[ \"$f\" = /sys/class/net/lo/threaded ] || echo 1 >\"$f\"; done", check=True)


def lab_throughput(lab, a):
    """TCP client->IPv4 host and back, tunnel and plain IPv6 in turn, a.runs times each."""
    from lab import SRV6, V44

    if a.tep_napi == "threaded":
        tep_napi_threaded(lab)
    pid = int(open(lab.path("c1", "c1.pid")).read())
    st = lab.ctl("c1", "status")
    fast = bool(st.get("fast_bound"))
    # What the client left on its veth for the tunnel; plain IPv6 runs with the lab's default.
    tunnel_csum = "tx-checksumming: on" in lab.exec("c1", "ethtool", "-k", "eth0").stdout
    if a.dataplane == "tc":
        # The tc TEP carries the kernel's checksum state end to end, so the
        # tunnel runs with c1's and the IPv4 host's veths leaving checksums
        # (and so segmentation) to the device, as NICs do; the client and the
        # lab turn that off on veths for the paths that read raw sockets.
        tunnel_csum = True
        lab.exec("v4", "ethtool", "-K", "eth0", "tx", "on", check=True)
    print("TCP throughput, %d runs of %d s each way, TEP data plane %s, client fast path %s, "
          "TEP NAPI %s (load before: %s)"
          % (a.runs, a.seconds, a.dataplane, "on" if fast else "off", a.tep_napi, load()))
    for reverse, what in ((False, "client->IPv4 host"), (True, "IPv4 host->client")):
        plain, tun, cpu, mplain, mtun = [], [], [], [], []
        per_gbit = lambda s, nbytes: s / (nbytes * 8 / 1e9) if nbytes else float("nan")
        for _ in range(a.runs):
            tx_csum(lab, True)
            m0 = machine_busy_seconds()
            bps, nbytes = lab_iperf(lab, "srv", SRV6, a.seconds, reverse)
            mplain.append(per_gbit(machine_busy_seconds() - m0, nbytes))
            tx_csum(lab, tunnel_csum)
            plain.append(bps)
            c0, m0 = cpu_seconds(pid), machine_busy_seconds()
            bps, nbytes = lab_iperf(lab, "v4", V44, a.seconds, reverse)
            c1, m1 = cpu_seconds(pid), machine_busy_seconds()
            tun.append(bps)
            cpu.append(per_gbit(c1 - c0, nbytes))
            mtun.append(per_gbit(m1 - m0, nbytes))
        p, t, c = median_spread(plain), median_spread(tun), median_spread(cpu)
        mp, mt = median_spread(mplain), median_spread(mtun)
        ratios = sorted(x / y for x, y in zip(tun, plain))
        print("BENCH " + json.dumps({
            "name": "TCP %s through the tunnel, Mbit/s (lab, %s TEP%s%s)"
                    % (what, a.dataplane, "" if fast else ", client fast path off",
                       ", its NAPI threaded" if a.tep_napi == "threaded" else ""),
            "ours": round(t[0] / 1e6), "peer": round(p[0] / 1e6), "unit": "Mbit/s",
            "peer_name": "plain IPv6, same veths", "load": load(),
            "note": "median of %d; all cores %.2f CPU-s/Gbit, plain %.2f" % (a.runs, mt[0], mp[0])}))
        print("  %s: tunnel %.0f Mbit/s (%.0f-%.0f), plain IPv6 %.0f Mbit/s (%.0f-%.0f), "
              "ratio %.3f (%.3f-%.3f); client %.3f CPU-s/Gbit (%.3f-%.3f)"
              % (what, t[0] / 1e6, t[1] / 1e6, t[2] / 1e6, p[0] / 1e6, p[1] / 1e6, p[2] / 1e6,
                 ratios[len(ratios) // 2], ratios[0], ratios[-1], c[0], c[1], c[2]))
        print("  %s: the machine, all cores: tunnel %.3f CPU-s/Gbit (%.3f-%.3f), plain IPv6 "
              "%.3f (%.3f-%.3f)" % (what, mt[0], mt[1], mt[2], mp[0], mp[1], mp[2]))
    n = lab.ctl("c1", "counters")
    print("  client: %d TSO super-packets read, %d coalesced TUN writes, %d sendmmsg batches, "
          "%d backpressure waits, drops: offload %d, send %d, tun write %d; load after: %s"
          % (n.get("tun_rx_gso", 0), n.get("tun_tx_coalesced", 0), n.get("tunnel_tx_batches", 0),
             n["backpressure_waits"], n.get("drop_offload", 0), n["drop_send_error"],
             n["drop_tun_write"], load()))
    print("  client fast path: %d packets out (%d GSO), %d in; left to userspace: %d out, %d in; "
          "errors %d out, %d in"
          % (n.get("fast_tx_packets", 0), n.get("fast_tx_gso", 0), n.get("fast_rx_packets", 0),
             n.get("fast_tx_passed", 0), n.get("fast_rx_passed", 0), n.get("fast_tx_errors", 0),
             n.get("fast_rx_errors", 0)))


def lab_main(a):
    if a.fast_path == "both":
        for f in ("on", "off"):
            a.fast_path = f
            lab_main(a)
        return
    if a.fast_path == "off":
        os.environ["DSTM_CLIENT_FAST_PATH"] = "off"
    else:
        os.environ.pop("DSTM_CLIENT_FAST_PATH", None)
    if a.offload == "both":
        for o in ("on", "off"):
            a.offload = o
            lab_main(a)
        return
    if a.offload == "off":
        os.environ["DSTM_TUN_OFFLOAD"] = "off"
    else:
        os.environ.pop("DSTM_TUN_OFFLOAD", None)
    print("TUN offloads %s" % a.offload)
    lab_one(a)


def lab_one(a):
    from lab import V44, Lab

    lab = Lab(name=os.environ.get("DSTM_LAB") or "bench%d" % os.getpid())
    try:
        lab.up(clients=2, dataplane=a.dataplane)
        if a.throughput_only:
            lab_throughput(lab, a)
            return
        ms = []
        conf = json.load(open(lab.path("c2", "c2.json")))
        conf["mode"] = "on-demand"
        path = lab.path("c2", "on-demand.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        for i in range(a.runs):
            pid = int(open(lab.path("c2", "c2.pid")).read())
            os.kill(pid, 15)
            for _ in range(100):
                if not os.path.exists("/proc/%d" % pid):
                    break
                time.sleep(0.05)
            p = subprocess.Popen(["ip", "netns", "exec", lab.netns("c2"),
                                  os.path.join(lab.build, "src/client/dstm-client"), "-d", "-c",
                                  path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(lab.path("c2", "c2.pid"), "w") as f:
                f.write("%d\n" % p.pid)
            for _ in range(100):
                if lab.exec("c2", "dstmctl", "-t", "1", "status").returncode == 0:
                    break
                time.sleep(0.05)
            r = lab.exec("c2", "python3", "-c",
                         "import socket,time\n"
                         "t0=time.perf_counter(); s=socket.create_connection(('%s',80),5)\n"
                         "print((time.perf_counter()-t0)*1000)\n" % V44)
            ms.append(float(r.stdout))
        ms.sort()
        print("on-demand first packet (TCP SYN) to its reply: median %.1f ms "
              "(min %.1f, max %.1f, %d runs)" % (ms[len(ms) // 2], ms[0], ms[-1], len(ms)))
        lab_throughput(lab, a)
    finally:
        lab.down()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", action="store_true")
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dataplane", default="tun", help="the lab TEP's data plane (tun, xdp, tc, auto)")
    ap.add_argument("--throughput-only", action="store_true",
                    help="with --lab: skip the on-demand figure")
    ap.add_argument("--offload", choices=("on", "off", "both"), default="on",
                    help="with --lab: TUN offloads of the client and the TEP (both: a lab "
                         "with them, then one with DSTM_TUN_OFFLOAD=off)")
    ap.add_argument("--fast-path", choices=("on", "off", "both"), default="on",
                    help="with --lab: the clients' kernel fast path (on: the lab's auto; both: "
                         "a lab with it, then one without)")
    ap.add_argument("--tep-napi", choices=("default", "threaded"), default="default",
                    help="with --lab: threaded runs the TEP's NAPI in kernel threads")
    a = ap.parse_args()
    if a.lab:
        lab_main(a)
        return
    from test_client import FAR4, Bed
    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        ms = sorted(on_demand_ms(tmp, a.runs))
        print("on-demand first packet to reply: median %.1f ms (min %.1f, max %.1f, %d runs)"
              % (ms[len(ms) // 2], ms[0], ms[-1], len(ms)))
        d = os.path.join(tmp, "tp")
        os.mkdir(d)
        b = Bed(d)
        try:
            b.wait_bound()
            plain, _ = iperf(b, "fd00:d57::1", a.seconds)
            c0 = cpu_seconds(client_pid(b))
            tun, nbytes = iperf(b, FAR4, a.seconds)
            c1 = cpu_seconds(client_pid(b))
            gbit = nbytes * 8 / 1e9
            print("TCP plain IPv6: %.0f Mbit/s; through the tunnel: %.0f Mbit/s; ratio %.3f"
                  % (plain / 1e6, tun / 1e6, tun / plain))
            print("client CPU: %.2f s for %.2f Gbit = %.2f CPU-seconds per gigabit"
                  % (c1 - c0, gbit, (c1 - c0) / gbit if gbit else float("nan")))
            n = b.ctl("counters")
            print("client counters: %d packets out, %d in, backpressure waits %d, "
                  "drops: send %d, too big %d"
                  % (n["tunnel_tx_packets"], n["tun_tx_packets"], n["backpressure_waits"],
                     n["drop_send_error"], n["drop_too_big"]))
        finally:
            b.close()


if __name__ == "__main__":
    main()

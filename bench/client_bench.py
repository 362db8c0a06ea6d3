#!/usr/bin/env python3
"""Figures of dstm-client (printed, never pass/fail):

  on-demand   milliseconds from the first IPv4 packet (a UDP datagram sent
              with no lease) to its reply: DTI queue, TSP session, create,
              address and routes, flush, TEP and back;
  throughput  TCP through the tunnel against plain IPv6 on the same veth
              (iperf3, a ratio);
  cpu         the client's CPU seconds per gigabit it carried.

With --lab the figures come from the namespace lab of scripts/lab (real
dstmd and dstm-tep; plain IPv6 is c1 to srv across the same bridge,
the tunnel c1 to v4). Without it the peer is tests/lab/client_peer.py (a
TSP server and a TEP in Python), so the throughput ratio is bounded by
that TEP, not by the client. The CPU per gigabit is the client's own
(with the kernel work done in its context, veth delivery included). Runs
as root, a few seconds each.

With --lab the lab is named $DSTM_LAB (default bench<pid>), and lines
starting with "BENCH " give scripts/bench the tunnel's TCP rate beside
plain IPv6's.

usage: DSTM_BUILD=build bench/client_bench.py [--lab] [--seconds N] [--runs N]
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


def lab_iperf(lab, server_node, target, seconds):
    srv = subprocess.Popen(["ip", "netns", "exec", lab.netns(server_node), "iperf3", "-s", "-1",
                            "-B", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        r = lab.exec("c1", "iperf3", "-J", "-c", target, "-t", str(seconds), timeout=seconds + 20)
    finally:
        srv.wait(10)
    j = json.loads(r.stdout)
    return j["end"]["sum_received"]["bits_per_second"], j["end"]["sum_received"]["bytes"]


def lab_main(a):
    from lab import SRV6, V44, Lab

    lab = Lab(name=os.environ.get("DSTM_LAB") or "bench%d" % os.getpid())
    try:
        lab.up(clients=2)
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
        load = os.getloadavg()[0]
        plain, _ = lab_iperf(lab, "srv", SRV6, a.seconds)
        pid = int(open(lab.path("c1", "c1.pid")).read())
        c0 = cpu_seconds(pid)
        tun, nbytes = lab_iperf(lab, "v4", V44, a.seconds)
        c1 = cpu_seconds(pid)
        print("BENCH " + json.dumps({
            "name": "TCP through the tunnel, Mbit/s (lab)", "ours": round(tun / 1e6),
            "peer": round(plain / 1e6), "unit": "Mbit/s", "peer_name": "plain IPv6, same veth",
            "load": round((load + os.getloadavg()[0]) / 2, 2), "note": "iperf3 c1->v4"}))
        gbit = nbytes * 8 / 1e9
        print("TCP plain IPv6 c1->srv: %.0f Mbit/s; through the tunnel c1->v4: %.0f Mbit/s; "
              "ratio %.3f" % (plain / 1e6, tun / 1e6, tun / plain))
        print("client CPU: %.2f s for %.2f Gbit = %.2f CPU-seconds per gigabit"
              % (c1 - c0, gbit, (c1 - c0) / gbit if gbit else float("nan")))
    finally:
        lab.down()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", action="store_true")
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
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

"""End-to-end tests of the whole DSTM domain (DESIGN §8): the real dstmd,
dstm-tep and dstm-client in the namespace lab of scripts/lab, with real
packets between the clients and the IPv4-only host v4. Each case is
bounded in time. They are skipped while one of the programs is not
built.

Every case runs twice, once with each server access module of the clients
(DESIGN §2): TSP, and DHCPv6 (IA_DSTM; dstmd serving on srv's eth0).

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_domain.py
"""

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time

import pytest

from lab import LAB_SCRIPT, POOL, V44, Lab, listening

PING_LOSS_FREE = " 0% packet loss"


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


# Once per access module; the TEP's two data planes share the runs (the
# lab's default, auto, is XDP where it attaches), so that both carry a whole
# domain's traffic without doubling the module's time.
@pytest.fixture(scope="module", params=[("tsp", "xdp"), ("dhcpv6", "tun")],
                ids=["tsp-xdp", "dhcpv6-tun"])
def lab(request):
    """The lab of conftest.py, once per access module."""
    lab = Lab()
    access, dataplane = request.param
    try:
        lab.up(access=access, dataplane=dataplane)
        yield lab
    finally:
        lab.down()


def relaunch(lab, **options):
    """lab.up() again with other options, the access module and data plane kept."""
    return lab.up(access=lab.options["access"], dataplane=lab.options["dataplane"], **options)


@pytest.fixture(scope="module", autouse=True)
def need_programs(lab):
    if lab.missing():
        pytest.skip("not built yet: " + ", ".join(lab.missing()))


def status(lab, node):
    return lab.ctl(node, "status")


def bound(lab, node, timeout=10):
    return wait_for(lambda: (lambda s: s if s["state"] == "bound" else None)(status(lab, node)),
                    timeout, node + " bound")


def dti_addresses(lab, node):
    out = lab.exec(node, "ip", "-4", "-o", "addr", "show", "dev", "dstm0").stdout
    return [w.split("/")[0] for line in out.splitlines() for w in line.split() if "/" in w]


def pid_of(lab, node):
    with open(lab.path(node, node + ".pid")) as f:
        return int(f.read())


def gone(pid):
    """The process has exited with all its threads. A zombie leader is not
    enough: its other threads (libmicrohttpd's) may still be exiting, and
    the last of them closes the files (the TEP's TUN device, its XDP links),
    so a successor started then finds the device busy and exits."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split()[2] not in ("Z", "X"):
                return False
        return len(os.listdir("/proc/%d/task" % pid)) <= 1
    except FileNotFoundError:
        return True


def kill_node(lab, node, sig=signal.SIGKILL):
    pid = pid_of(lab, node)
    os.kill(pid, sig)
    wait_for(lambda: gone(pid), 5, node + " to stop")


def start_node(lab, node, prog, conf=None):
    """Start a daemon the way scripts/lab does, in the node's namespace."""
    conf = conf or lab.path(node, node + ".json")
    log = open(lab.path(node, node + ".log"), "a")
    p = subprocess.Popen(["ip", "netns", "exec", lab.netns(node),
                          os.path.join(lab.build, {"dstmd": "src/dstmd/dstmd",
                                                   "dstm-tep": "src/tep/dstm-tep",
                                                   "dstm-client": "src/client/dstm-client"}[prog]),
                          "-d", "-c", conf], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    with open(lab.path(node, node + ".pid"), "w") as f:
        f.write("%d\n" % p.pid)
    wait_for(lambda: lab.exec(node, "dstmctl", "-t", "1", "status").returncode == 0, 10,
             node + " control socket")
    return p


@contextlib.contextmanager
def client_changed(lab, node, name, stop=signal.SIGTERM, **changes):
    """`node`'s dstm-client restarted with its configuration changed (kept
    as NAME.json beside it); afterwards restarted as it was, and bound.
    stop=None: it has already been stopped."""
    if stop is not None:
        kill_node(lab, node, stop)
    conf = json.load(open(lab.path(node, node + ".json")))
    conf.update(changes)
    path = lab.path(node, name + ".json")
    with open(path, "w") as f:
        json.dump(conf, f)
    try:
        start_node(lab, node, "dstm-client", path)
        yield
    finally:
        kill_node(lab, node, signal.SIGTERM)
        start_node(lab, node, "dstm-client")
        bound(lab, node)


def background(lab, node, *cmd):
    return subprocess.Popen([LAB_SCRIPT, "exec", node, *cmd],
                            env=dict(os.environ, DSTM_LAB=lab.name, DSTM_BUILD=lab.build),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def test_distinct_addresses(lab):
    addrs = [bound(lab, n)["ipv4"] for n in lab.client_nodes]
    assert len(set(addrs)) == len(addrs)
    for a in addrs:
        assert ipaddress.IPv4Address(a) in ipaddress.IPv4Network(POOL)
    for n, a in zip(lab.client_nodes, addrs):
        assert dti_addresses(lab, n) == [a]


def test_tcp_udp_icmp_both_ways(lab):
    c1 = bound(lab, "c1")["ipv4"]
    # client -> v4: ICMP, TCP (1 MiB, checksum), UDP
    assert lab.exec("c1", "ping", "-c", "3", "-W", "2", V44).returncode == 0
    r = lab.exec("c1", "sh", "-c", "curl -sf --max-time 10 http://%s/1M.bin | sha256sum" % V44)
    want = open(lab.path("v4", "www", "1M.bin.sha256")).read().split()[0]
    assert r.stdout.split()[0] == want
    echo = listening(["ip", "netns", "exec", lab.netns("v4"), "python3", "-c",
                      "import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                      "u.bind(('%s',7)); u.settimeout(10)\nprint('ready', flush=True)\n"
                      "d,a=u.recvfrom(99); u.sendto(d,a)\n" % V44])
    r = lab.exec("c1", "python3", "-c",
                 "import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                 "u.settimeout(5); u.sendto(b'dstm',('%s',7)); print(u.recv(9).decode())\n" % V44)
    echo.wait(10)
    assert r.stdout.strip() == "dstm"
    # v4 -> client: ICMP and TCP to the leased address
    assert lab.exec("v4", "ping", "-c", "3", "-W", "2", c1).returncode == 0
    srv = listening(["ip", "netns", "exec", lab.netns("c1"), "python3", "-c",
                     "import socket\nt=socket.socket(); t.bind(('%s',8080)); t.listen(1)\n"
                     "print('ready', flush=True)\n"
                     "t.settimeout(10); c,a=t.accept(); c.sendall(a[0].encode())\n" % c1])
    r = lab.exec("v4", "python3", "-c",
                 "import socket\nt=socket.create_connection(('%s',8080),5)\n"
                 "print(t.recv(50).decode())\n" % c1)
    srv.wait(10)
    assert r.stdout.strip() == V44
    n = lab.ctl("c1", "counters")
    assert n["drop_not_tep"] == 0 and n["drop_bad_destination"] == 0


def test_on_demand_first_connection_succeeds(lab):
    node = "c2"
    # Stopping it releases its lease.
    with client_changed(lab, node, "on-demand", mode="on-demand"):
        assert status(lab, node)["state"] == "idle"
        t0 = time.monotonic()
        r = lab.exec(node, "curl", "-sf", "--max-time", "5", "-o", "/dev/null",
                     "-w", "%{http_code}", "http://%s/" % V44)
        assert r.stdout == "200", r
        assert time.monotonic() - t0 < 3
        assert status(lab, node)["state"] == "bound"


def test_revoke_stops_traffic_at_once(lab):
    a = bound(lab, "c2")["ipv4"]
    assert lab.exec("v4", "ping", "-c", "1", "-W", "2", a).returncode == 0
    lab.ctl("srv", "revoke", address=a)
    wait_for(lambda: a not in dti_addresses(lab, "c2"), 1.0, "c2 to drop " + a)
    assert lab.exec("v4", "ping", "-c", "2", "-W", "1", a).returncode != 0
    if lab.options["access"] == "dhcpv6":
        # TSP has its kept-open session; DHCPv6 a Reconfigure (RFC 8415 §18.3.11).
        assert lab.ctl("srv", "counters")["dhcp6_reconfigure_sent"] >= 1
    else:
        assert lab.ctl("c2", "counters")["server_deletes"] >= 1
    # always-on: c2 comes back with another address (the old one is in quarantine)
    assert bound(lab, "c2", timeout=40)["ipv4"] != a


def test_dstmd_restart_mid_lease_keeps_traffic(lab):
    a = bound(lab, "c1")["ipv4"]
    ping = background(lab, "c1", "ping", "-c", "60", "-i", "0.1", "-W", "1", V44)
    time.sleep(1)
    kill_node(lab, "srv")
    start_node(lab, "srv", "dstmd")
    out, _ = ping.communicate(timeout=30)
    assert PING_LOSS_FREE in out, out
    assert status(lab, "c1")["ipv4"] == a


def test_tep_restart_traffic_back_within_2s(lab):
    bound(lab, "c1")
    kill_node(lab, "tep")
    t0 = time.monotonic()
    start_node(lab, "tep", "dstm-tep")
    wait_for(lambda: lab.exec("c1", "ping", "-c", "1", "-W", "1", V44).returncode == 0, 5,
             "traffic through the restarted TEP")
    assert time.monotonic() - t0 < 2.0


SHORT = 10  # dstmd's shortest lifetime


def test_renewal_over_several_lifetimes_without_loss(lab):
    relaunch(lab, clients=2, lifetime=SHORT)
    try:
        bound(lab, "c1")
        # 3.5 lifetimes, 7 renewals, a ping every 0.1 s
        r = lab.exec("c1", "ping", "-c", "350", "-i", "0.1", "-W", "1", V44, timeout=60)
        assert PING_LOSS_FREE in r.stdout, r.stdout
        n = lab.ctl("c1", "counters")
        assert n["renewals"] >= 6 and n["acquisitions"] == 1 and n["expiries"] == 0
    finally:
        relaunch(lab, clients=2)


def test_killed_client_lease_expires_into_quarantine(lab):
    relaunch(lab, clients=2, lifetime=SHORT)
    try:
        a = bound(lab, "c2")["ipv4"]
        kill_node(lab, "c2")  # no release
        time.sleep(SHORT + 1.5)
        leases = {l["ipv4"]: l for l in lab.ctl("srv", "leases", all=True)}
        assert leases[a]["state"] == "quarantine", leases
        assert a not in [l["ipv4"] for l in lab.ctl("srv", "leases")]
        assert lab.ctl("srv", "pools")[0]["quarantined"] >= 1
        # nobody gets it while it waits
        assert bound(lab, "c1")["ipv4"] != a
    finally:
        relaunch(lab, clients=2)

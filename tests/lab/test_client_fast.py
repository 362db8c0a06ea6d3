"""dstm-client's kernel fast path (tc BPF, dstm-client(8) "fast_path") in
the namespace lab of scripts/lab, against both TEP data planes: packets
really take it (its counters, the userspace path's stay still), the
on-demand first packet, renewal, release and revocation still work, no
packet leaves with a stale binding, and a spoofed 4in6 packet is never
delivered (the fast path leaves it to the userspace checks, which count
it). "fast_path": "off" leaves no program behind.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_client_fast.py
"""

import hashlib
import os
import signal
import time

import pytest

from lab import PATTERN, V44, Lab, hashed_exchange
from test_domain import bound, client_changed, kill_node, start_node, wait_for

# argv: outer source (an address of the sending node), outer destination,
# inner source, inner destination, count. The kernel writes the IPv6 header
# of a raw IPPROTO_IPIP socket (next header 4); the IPv4 header is ours.
SEND_4IN6 = (
    "import socket, struct, sys\n"
    "src6, dst6, src4, dst4, n = sys.argv[1:6]\n"
    "s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_IPIP)\n"
    "s.bind((src6, 0))\n"
    "udp = struct.pack('!HHHH', 9, 9, 13, 0) + b'spoof'\n"
    "h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,\n"
    "                socket.inet_aton(src4), socket.inet_aton(dst4))\n"
    "c = sum(struct.unpack('!10H', h)); c = (c & 0xffff) + (c >> 16)\n"
    "c = (c & 0xffff) + (c >> 16)\n"
    "h = h[:10] + struct.pack('!H', ~c & 0xffff) + h[12:]\n"
    "for _ in range(int(n)):\n"
    "    s.sendto(h + udp, (dst6, 0))\n")


@pytest.fixture(scope="module", params=["tun", "xdp", "tc"], ids=["tep-tun", "tep-xdp", "tep-tc"])
def lab(request):
    if os.environ.get("DSTM_CLIENT_FAST_PATH", "auto") == "off":
        pytest.skip("DSTM_CLIENT_FAST_PATH=off: the fast path is what these test")
    lab = Lab()
    try:
        lab.up(dataplane=request.param, lifetime=10)
        if lab.missing():
            pytest.skip("not built yet: " + ", ".join(lab.missing()))
        st = bound(lab, "c1")
        if not st.get("fast_path"):
            pytest.skip("the fast path does not load here (see c1's log)")
        yield lab
    finally:
        lab.down()


def counters(lab, node="c1"):
    return lab.ctl(node, "counters")


def filters(lab, node, dev, where):
    return lab.exec(node, "tc", "filter", "show", "dev", dev, where).stdout


def test_traffic_takes_the_fast_path(lab):
    bound(lab, "c1")
    before = counters(lab)
    r = lab.exec("c1", "sh", "-c", "curl -sf --max-time 10 http://%s/1M.bin | sha256sum" % V44)
    want = open(lab.path("v4", "www", "1M.bin.sha256")).read().split()[0]
    assert r.stdout.split()[0] == want
    n = counters(lab)
    assert "tc_fast_out" in filters(lab, "c1", "dstm0", "egress")
    assert "tc_fast_in" in filters(lab, "c1", "eth0", "ingress")
    # The request and its ACKs went out in the kernel, the megabyte came in there.
    assert n["fast_tx_packets"] > before["fast_tx_packets"]
    assert n["fast_rx_bytes"] - before["fast_rx_bytes"] >= 1 << 20
    # Neither way touched the userspace path (keepalives aside: allow a few).
    assert n["tunnel_tx_packets"] - before["tunnel_tx_packets"] < 5
    assert n["tun_tx_packets"] - before["tun_tx_packets"] < 5
    assert n["fast_tx_errors"] == 0 and n["fast_rx_errors"] == 0


def exchange(lab, port, size, back=0):
    """hashed_exchange between c1 and the IPv4 host."""
    return hashed_exchange(lab.netns("v4"), lambda *cmd, **kw: lab.exec("c1", *cmd, **kw), V44,
                           port, size, back)


def test_upload_segmented_by_the_kernel_arrives_intact(lab):
    """4 MB from the client, hashed at v4: TSO packets encapsulated whole."""
    bound(lab, "c1")
    before = counters(lab)
    size = 4 << 20
    out = exchange(lab, 5001, size)
    assert out[:1] == ["True"], out
    n = counters(lab)
    assert n["fast_tx_gso"] > before["fast_tx_gso"]
    assert n["fast_tx_bytes"] - before["fast_tx_bytes"] >= size


def test_tc_tep_carries_whole_gso_packets_both_ways(lab):
    """The tc TEP with c1's and the IPv4 host's veths leaving checksums to
    the device (as on a NIC; dstm-client and the lab turn that off on a
    veth, for the paths that read packets from a raw socket): 4 MB each way
    arrive whole, and the TEP forwards packets larger than the link's MTU,
    so GSO crossed the tunnel both ways."""
    if lab.options["dataplane"] != "tc":
        pytest.skip("GSO crosses the TEP whole on its tc plane only")
    bound(lab, "c1")
    size = 4 << 20
    was = {n: "tx-checksumming: on" in lab.exec(n, "ethtool", "-k", "eth0").stdout
           for n in ("c1", "v4")}
    for n in was:
        lab.exec(n, "ethtool", "-K", "eth0", "tx", "on", check=True)
    try:
        before = lab.ctl("tep", "counters")
        out = exchange(lab, 5002, size, back=size)
        after = lab.ctl("tep", "counters")
    finally:
        for n, on in was.items():
            lab.exec(n, "ethtool", "-K", "eth0", "tx", "on" if on else "off", check=True)
    assert out == ["True", hashlib.sha256(PATTERN * (size // 65536)).hexdigest()], out
    d = {k: after[k] - before[k] for k in after if isinstance(after[k], int)}
    # Whole GSO packets: on average beyond the 1500-byte link, which no
    # packet that crossed it one frame at a time can be.
    assert d["decap_bytes"] >= size and d["decap_bytes"] > 1500 * d["decap_pkts"], d
    assert d["encap_bytes"] >= size and d["encap_bytes"] > 1500 * d["encap_pkts"], d
    assert d["xdp_decap_pkts"] == d["decap_pkts"] and d["xdp_encap_pkts"] == d["encap_pkts"], d


def test_renewal_keeps_the_fast_path(lab):
    """The lab's lifetime is 10 s: renewals at 5 s, traffic through them."""
    bound(lab, "c1")
    r0 = counters(lab)["renewals"]
    ping = lab.exec("c1", "ping", "-c", "60", "-i", "0.2", "-W", "1", V44, timeout=30)
    assert " 0% packet loss" in ping.stdout, ping.stdout
    n = counters(lab)
    assert n["renewals"] > r0
    st = lab.ctl("c1", "status")
    assert st["state"] == "bound" and st["fast_bound"] is True


def test_spoofed_4in6_is_not_delivered(lab):
    """A wrong outer source (srv, not the TEP) or a wrong inner destination
    (from the TEP's address): the fast path leaves both to the userspace
    checks, which drop and count them; nothing reaches the DTI."""
    st = bound(lab, "c1")
    c6, c4 = st["ipv6"], st["ipv4"]
    tep6 = st["tep_ipv6"]
    before = counters(lab)
    # Wrong outer source, right inner destination.
    r = lab.exec("srv", "python3", "-c", SEND_4IN6, "fd00:d57::1", c6, V44, c4, "3")
    assert r.returncode == 0, r.stderr
    # The TEP's outer source, an inner destination that is not the lease.
    r = lab.exec("tep", "python3", "-c", SEND_4IN6, tep6, c6, V44, "192.0.2.250", "3")
    assert r.returncode == 0, r.stderr
    n = wait_for(lambda: (lambda n: n if n["drop_not_tep"] - before["drop_not_tep"] >= 3 and
                          n["drop_bad_destination"] - before["drop_bad_destination"] >= 3
                          else None)(counters(lab)), 5, "the userspace path's drops")
    assert n["fast_rx_passed"] - before["fast_rx_passed"] == 6
    assert n["fast_rx_packets"] == before["fast_rx_packets"] or \
        n["fast_rx_packets"] - before["fast_rx_packets"] < 3  # keepalives only


def test_on_demand_first_packet_then_fast(lab):
    node = "c2"
    with client_changed(lab, node, "on-demand", mode="on-demand"):
        st = lab.ctl(node, "status")
        assert st["state"] == "idle" and st["fast_bound"] is False
        # The first connection is opened on the placeholder: its packets are
        # early-flow translated in userspace, both ways.
        r = lab.exec(node, "curl", "-sf", "--max-time", "5", "-o", "/dev/null",
                     "-w", "%{http_code}", "http://%s/" % V44)
        assert r.stdout == "200", r
        n = counters(lab, node)
        assert n["early_translated_out"] > 0 and n["early_translated_in"] > 0
        assert lab.ctl(node, "status")["fast_bound"] is True
        # A connection opened now uses the leased address: the fast path.
        before = counters(lab, node)
        r = lab.exec(node, "curl", "-sf", "--max-time", "5", "-o", "/dev/null",
                     "-w", "%{http_code}", "http://%s/1M.bin" % V44)
        assert r.stdout == "200", r
        n = counters(lab, node)
        assert n["fast_tx_packets"] > before["fast_tx_packets"]


def test_revoked_lease_leaves_no_binding(lab):
    """Revocation: the binding goes before the address, so nothing leaves
    with the old address through the kernel."""
    a = bound(lab, "c2")["ipv4"]
    lab.ctl("srv", "revoke", address=a)
    wait_for(lambda: a not in lab.exec("c2", "ip", "-4", "-o", "addr", "show",
                                       "dev", "dstm0").stdout, 2.0, "c2 to drop " + a)
    st = lab.ctl("c2", "status")
    if st["state"] != "bound":
        assert st["fast_bound"] is False
        before = counters(lab, "c2")
        # A packet with the old source, written straight onto the DTI.
        r = lab.exec("c2", "python3", "-c",
                     "import socket\n"
                     "s=socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)\n"
                     "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'dstm0')\n"
                     "h=bytes([0x45,0,0,28,0,1,0,0,64,17,0,0])+socket.inet_aton('%s')"
                     "+socket.inet_aton('%s')\n"
                     "s.sendto(h+bytes([0,9,0,9,0,8,0,0]), ('%s',0))\n" % (a, V44, V44))
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)
        n = counters(lab, "c2")
        if lab.ctl("c2", "status")["state"] != "bound":
            assert n["fast_tx_packets"] == before["fast_tx_packets"]
    # always-on: back with another address, and the fast path with it.
    st = bound(lab, "c2", timeout=40)
    assert st["ipv4"] != a
    wait_for(lambda: lab.ctl("c2", "status")["fast_bound"], 5, "the new binding")
    assert lab.exec("c2", "ping", "-c", "2", "-W", "2", V44).returncode == 0


def test_release_removes_the_programs(lab):
    node = "c2"
    bound(lab, node)
    assert "tx-checksumming: off" in lab.exec(node, "ethtool", "-k", "eth0").stdout
    kill_node(lab, node, signal.SIGTERM)
    try:
        assert "tc_fast_in" not in filters(lab, node, "eth0", "ingress")
        # The veth's transmit checksumming, which the fast path turned off, is on again.
        assert "tx-checksumming: on" in lab.exec(node, "ethtool", "-k", "eth0").stdout
        assert "clsact" not in lab.exec(node, "tc", "qdisc", "show", "dev", "eth0").stdout
    finally:
        start_node(lab, node, "dstm-client")
        bound(lab, node)


def test_killed_run_is_replaced_and_off_removes_it(lab):
    node = "c2"
    bound(lab, node)
    kill_node(lab, node)  # SIGKILL: the ingress filter stays behind
    assert "tc_fast_in" in filters(lab, node, "eth0", "ingress")
    with client_changed(lab, node, "off", stop=None, fast_path="off"):
        st = bound(lab, node)
        assert st["fast_path"] is False
        assert "tc_fast_in" not in filters(lab, node, "eth0", "ingress")
        before = counters(lab, node)
        assert lab.exec(node, "ping", "-c", "3", "-W", "2", V44).returncode == 0
        n = counters(lab, node)
        assert n["fast_tx_packets"] == 0 and n["fast_rx_packets"] == 0
        assert n["tunnel_tx_packets"] - before["tunnel_tx_packets"] >= 3
    assert lab.ctl(node, "status")["fast_path"] is True

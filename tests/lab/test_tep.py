"""dstm-tep on the real lab (DESIGN §8): packets crafted with scapy and sent
from the clients' namespaces (through a raw 4in6 socket of their own, so the
kernel builds the outer header as the DTI's does) and from the IPv4-only host
prove forwarding, the return path, hairpinning, every filter and the ICMP
behaviour of the running daemon, with exact counters read through
`dstmctl --json counters`; restarting the TEP gets its bindings back from
dstmd within 2 seconds. Every wait is bounded."""

import os
import signal
import subprocess
import time

import pytest

from lab import LAB_SCRIPT, TEP4, TEP6, V44, Lab, client_ipv6, listening

PY = "/usr/bin/python3"  # Debian's, which has python3-scapy

# Send IPv4 packets (hex) inside IPv6 from `src` to the TEP, as a DTI does.
SEND4IN6 = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_IPIP)
s.bind((sys.argv[1], 0))
for h in sys.argv[2:]:
    s.sendto(bytes.fromhex(h), ("%s", 0))
""" % TEP6


def scapy_bytes(expr):
    """Build a packet with scapy here and return its bytes as hex."""
    from_scapy = subprocess.run(
        [PY, "-c", "from scapy.all import *\nimport sys\nsys.stdout.write(bytes(%s).hex())"
         % expr], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert from_scapy.returncode == 0, from_scapy.stderr
    return from_scapy.stdout


def send_4in6(lab, node, src6, *exprs):
    pkts = [scapy_bytes(e) for e in exprs]
    lab.exec(node, PY, "-c", SEND4IN6, src6, *pkts, check=True)


def counters(lab):
    return lab.ctl("tep", "counters")


def drops(c):
    return sum(v for k, v in c.items() if k.startswith("drop_"))


def wait_delta(lab, before, want, timeout=3.0):
    """Poll until every counter of `want` grew by exactly its value; return the counters."""
    deadline = time.monotonic() + timeout
    while True:
        now = counters(lab)
        got = {k: now[k] - before[k] for k in want}
        if got == want or time.monotonic() > deadline:
            assert got == want, "counter deltas %s, expected %s" % (got, want)
            return now
        time.sleep(0.1)


@pytest.fixture(scope="module", params=["tun", "xdp", "tc"])
def lab(request):
    """The lab of conftest.py, once per TEP data plane: every test here
    runs against the TUN path alone, against XDP in front of it and
    against the tc programs in front of it."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    lab = Lab()
    try:
        lab.up(dataplane=request.param)
        yield lab
    finally:
        lab.down()


def binding_of(lab, ipv6):
    for b in lab.ctl("tep", "bindings"):
        if b["ipv6"] == ipv6:
            return b
    raise AssertionError("no binding for %s" % ipv6)


@pytest.fixture(scope="module")
def tep(lab):
    if not lab.built("dstm-tep") or not lab.built("dstmd"):
        pytest.skip("dstm-tep and dstmd must be built")
    c1, c2 = client_ipv6(1), client_ipv6(2)
    deadline = time.monotonic() + 10
    while len(lab.ctl("tep", "bindings")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    return {"c1": (c1, binding_of(lab, c1)["ipv4"]), "c2": (c2, binding_of(lab, c2)["ipv4"])}


def test_status(lab, tep):
    st = lab.ctl("tep", "status")
    assert st["mode"] == "server"
    assert st["ipv6"] == TEP6 and st["ipv4"] == TEP4
    assert st["pools"] == ["192.0.2.0/24"]
    assert st["bindings"] == 2
    for b in lab.ctl("tep", "bindings"):
        assert b["origin"] == "server" and b["port_lo"] == 0 and b["port_hi"] == 65535


def test_forwarding_and_return_path(lab, tep):
    """A UDP datagram from c1 reaches v4 decapsulated, the answer comes back to c1 only."""
    c1, c1v4 = tep["c1"]
    before = counters(lab)
    b_before = binding_of(lab, c1)
    # v4 echoes one datagram back to where it came from.
    echo = listening(
        [LAB_SCRIPT, "exec", "v4", PY, "-c",
         "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
         "s.bind(('%s',7777))\ns.settimeout(10)\nprint('ready', flush=True)\n"
         "d,a=s.recvfrom(2000)\ns.sendto(d,a)\n" % V44],
        env=lab._env(), stderr=subprocess.PIPE)
    r = lab.exec("c1", PY, "-c",
                 "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                 "s.bind(('%s',0))\ns.settimeout(5)\ns.sendto(b'dstm'*10,('%s',7777))\n"
                 "print(s.recvfrom(2000)[0].decode())" % (c1v4, V44), timeout=20)
    echo.wait(timeout=15)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "dstm" * 10
    wait_delta(lab, before, {"decap_pkts": 1, "encap_pkts": 1})
    b = binding_of(lab, c1)
    assert b["pkts_in"] - b_before["pkts_in"] == 1
    assert b["pkts_out"] - b_before["pkts_out"] == 1
    # The data plane asked for is the one running; on XDP or tc, once the
    # neighbours are known, plain datagrams never reach the userspace path
    # (the kernel plane's counters keep the xdp_ names).
    dataplane = lab.options["dataplane"]
    assert lab.ctl("tep", "status")["dataplane"] == dataplane
    before = counters(lab)
    lab.exec("c1", PY, "-c",
             "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             "s.bind(('%s',0))\n"
             "for i in range(5): s.sendto(b'x'*20,('%s',9))" % (c1v4, V44), check=True)
    after = wait_delta(lab, before, {"decap_pkts": 5})
    by_xdp = {k: after[k] - before[k] for k in ("xdp_decap_pkts", "xdp_pass_v6", "xdp_no_route")}
    if dataplane in ("xdp", "tc"):
        assert by_xdp == {"xdp_decap_pkts": 5, "xdp_pass_v6": 0, "xdp_no_route": 0}
    else:
        assert after["xdp_decap_pkts"] == after["xdp_encap_pkts"] == after["xdp_pass_v6"] == 0
    # HTTP over the tunnel (TCP both ways).
    r = lab.exec("c1", "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                 "http://%s/" % V44, timeout=15)
    assert r.stdout == "200"


def test_hairpin(lab, tep):
    c1, c1v4 = tep["c1"]
    c2, c2v4 = tep["c2"]
    before = counters(lab)
    lab.exec("c1", "ping", "-c", "2", "-i", "0.2", "-W", "2", c2v4, check=True)
    # Two echo requests one way, two replies the other.
    wait_delta(lab, before, {"hairpin_pkts": 4, "decap_pkts": 0, "encap_pkts": 0})


def test_client_claiming_another_clients_address(lab, tep):
    """c2 sends with c1's IPv4 source: the outer source is not c1's binding."""
    c1, c1v4 = tep["c1"]
    c2, _ = tep["c2"]
    before = counters(lab)
    send_4in6(lab, "c2", c2, "IP(src='%s', dst='%s')/UDP(sport=1, dport=9)" % (c1v4, V44))
    after = wait_delta(lab, before, {"drop_spoofed_v6_src": 1, "decap_pkts": 0})
    assert drops(after) - drops(before) == 1


def test_unknown_outer_source(lab, tep):
    """A host with an address no binding names uses c2's IPv4 source."""
    c2, c2v4 = tep["c2"]
    evil = "fd00:d57::99"
    lab.exec("c2", "ip", "-6", "addr", "add", evil + "/64", "dev", "eth0", "nodad", check=True)
    try:
        before = counters(lab)
        send_4in6(lab, "c2", evil, "IP(src='%s', dst='%s')/UDP(sport=1, dport=9)" % (c2v4, V44),
                  "IP(src='%s', dst='%s')/ICMP()" % (c2v4, V44))
        after = wait_delta(lab, before, {"drop_spoofed_v6_src": 2, "decap_pkts": 0})
        assert drops(after) - drops(before) == 2
    finally:
        lab.exec("c2", "ip", "-6", "addr", "del", evil + "/64", "dev", "eth0")


def test_spoofed_inner_source(lab, tep):
    c1, _ = tep["c1"]
    before = counters(lab)
    send_4in6(lab, "c1", c1, "IP(src='192.0.2.200', dst='%s')/UDP(sport=1, dport=9)" % V44,
              "IP(src='203.0.113.5', dst='%s')/UDP(sport=1, dport=9)" % V44)
    after = wait_delta(lab, before, {"drop_no_binding_src": 2, "decap_pkts": 0})
    assert drops(after) - drops(before) == 2


def test_malformed_inner_packets(lab, tep):
    c1, c1v4 = tep["c1"]
    before = counters(lab)
    send_4in6(lab, "c1", c1,
              "IP(src='%s', dst='%s', chksum=0x1234)/UDP()" % (c1v4, V44),
              "IP(src='%s', dst='%s', len=200)/UDP()" % (c1v4, V44),
              "IP(src='%s', dst='%s', version=5)/UDP()" % (c1v4, V44),
              "IP(src='%s', dst='%s', frag=8191)/Raw(b'x'*16)" % (c1v4, V44),
              "IP(src='%s', dst='224.0.0.9')/UDP()" % c1v4,
              "Raw(b'\\x45\\x00')")
    after = wait_delta(lab, before, {"drop_v4_checksum": 1, "drop_v4_truncated": 2,
                                     "drop_v4_version": 1, "drop_v4_fragment": 1,
                                     "drop_v4_martian": 1, "decap_pkts": 0})
    assert drops(after) - drops(before) == 6


def test_ttl_expired_is_answered_through_the_tunnel(lab, tep):
    c1, c1v4 = tep["c1"]
    before = counters(lab)
    send_4in6(lab, "c1", c1, "IP(src='%s', dst='%s', ttl=1)/UDP(sport=1, dport=9)" % (c1v4, V44))
    wait_delta(lab, before, {"drop_ttl_expired": 1, "icmp4_sent_time_exceeded": 1,
                             "decap_pkts": 0})


def test_unbound_pool_address_gets_host_unreachable(lab, tep):
    """Nothing from the IPv4 side reaches a client that is not bound."""
    before = counters(lab)
    r = lab.exec("v4", PY, "-c",
                 "from scapy.all import *\nconf.verb=0\n"
                 "a=sr1(IP(dst='192.0.2.200')/UDP(sport=4000,dport=53),timeout=3)\n"
                 "print(a[ICMP].type, a[ICMP].code, a[IP].src)", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "1", TEP4]
    wait_delta(lab, before, {"drop_no_binding_dst": 1, "icmp4_sent_unreach": 1,
                             "encap_pkts": 0})


def test_packet_too_big_reaches_the_ipv4_sender(lab, tep):
    """ICMPv6 PTB about a tunnel packet to c2: c2's path MTU drops and the IPv4
    sender hears fragmentation-needed, then and for later DF packets."""
    c2, c2v4 = tep["c2"]
    quote = scapy_bytes("IPv6(src='%s', dst='%s', nh=4)/IP(src='%s', dst='%s', flags='DF')"
                        "/UDP(sport=80, dport=5000)/Raw(b'q'*1000)" % (TEP6, c2, V44, c2v4))
    ptb = scapy_bytes("ICMPv6PacketTooBig(mtu=1300)") + quote
    before = counters(lab)
    lab.exec("srv", PY, "-c",
             "import socket,sys\ns=socket.socket(socket.AF_INET6,socket.SOCK_RAW,58)\n"
             "s.sendto(bytes.fromhex(sys.argv[1]),('%s',0))" % TEP6, ptb, check=True)
    wait_delta(lab, before, {"pmtu_updates": 1, "icmp4_sent_frag_needed": 1})
    assert binding_of(lab, c2)["mtu"] == 1300
    before = counters(lab)
    r = lab.exec("v4", PY, "-c",
                 "from scapy.all import *\nconf.verb=0\n"
                 "a=sr1(IP(dst='%s',flags='DF')/UDP(sport=80,dport=5000)/Raw(b'z'*1372),"
                 "timeout=3)\nprint(a[ICMP].type, a[ICMP].code, a[ICMP].nexthopmtu)" % c2v4,
                 timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "4", "1260"]
    wait_delta(lab, before, {"drop_too_big_df": 1, "icmp4_sent_frag_needed": 1,
                             "encap_pkts": 0})
    # Without DF the IPv6 packet is fragmented (RFC 2473 §7.1) and c2 gets it whole.
    listener = listening(
        [LAB_SCRIPT, "exec", "c2", PY, "-c",
         "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
         "s.bind(('%s',5001))\ns.settimeout(8)\nprint('ready', flush=True)\n"
         "print(len(s.recvfrom(4000)[0]))" % c2v4],
        env=lab._env(), stderr=subprocess.PIPE)
    before = counters(lab)
    lab.exec("v4", PY, "-c", "from scapy.all import *\nconf.verb=0\n"
             "send(IP(dst='%s')/UDP(sport=80,dport=5001)/Raw(b'z'*1372))" % c2v4, check=True)
    out, err = listener.communicate(timeout=15)
    assert out.strip() == "1372", err
    wait_delta(lab, before, {"encap_pkts": 1, "encap_v6_fragmented": 1, "drop_too_big_df": 0})


def test_icmp_errors_reach_the_client_they_concern(lab, tep):
    c1, c1v4 = tep["c1"]
    before = counters(lab)
    b_before = binding_of(lab, c1)
    lab.exec("v4", PY, "-c", "from scapy.all import *\nconf.verb=0\n"
             "send(IP(dst='%s')/ICMP(type=3,code=3)/IP(src='%s',dst='%s')"
             "/UDP(sport=5000,dport=9))" % (c1v4, c1v4, V44), check=True)
    wait_delta(lab, before, {"encap_pkts": 1})
    assert binding_of(lab, c1)["pkts_out"] - b_before["pkts_out"] == 1


def test_tsp_only_from_configured_servers(lab, tep):
    before = counters(lab)
    r = lab.exec("c1", PY, "-c",
                 "import socket\ns=socket.create_connection(('%s',3653),timeout=3)\n"
                 "s.settimeout(3)\ntry:\n    s.sendall(b'VERSION=2.0.0\\r\\n')\n"
                 "    print('closed' if s.recv(100) == b'' else 'answered')\n"
                 "except (ConnectionResetError, BrokenPipeError):\n    print('closed')\n"
                 % TEP6, timeout=15)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "closed"  # not a word from the TEP
    wait_delta(lab, before, {"tsp_refused_peer": 1, "tsp_sessions": 0})


def test_operator_bindings(lab, tep):
    b = lab.ctl("tep", "binding-add", ipv4="192.0.2.201", ipv6="fd00:d57::99")
    assert b["origin"] == "operator" and b["ipv6"] == "fd00:d57::99"
    assert any(x["ipv4"] == "192.0.2.201" for x in lab.ctl("tep", "bindings"))
    assert [x["ipv6"] for x in lab.ctl("tep", "bindings", ipv4="192.0.2.201")] == ["fd00:d57::99"]
    assert len(lab.ctl("tep", "bindings", limit=1)) == 1
    lab.ctl("tep", "binding-del", ipv4="192.0.2.201")
    assert not any(x["ipv4"] == "192.0.2.201" for x in lab.ctl("tep", "bindings"))
    with pytest.raises(Exception) as e:
        lab.ctl("tep", "binding-add", ipv4="203.0.113.1", ipv6="fd00:d57::99")
    assert "outside the pools" in str(e.value)
    # Shared addresses: port ranges of one size.
    lab.ctl("tep", "binding-add", ipv4="192.0.2.202", ipv6="fd00:d57::98", port_lo=1024,
            port_hi=2047)
    with pytest.raises(Exception):
        lab.ctl("tep", "binding-add", ipv4="192.0.2.202", ipv6="fd00:d57::97", port_lo=1500,
                port_hi=1600)
    lab.ctl("tep", "binding-del", ipv4="192.0.2.202", port_lo=1024)


def test_restart_restores_bindings_within_2s(lab, tep):
    pidfile = lab.path("tep", "tep.pid")
    with open(pidfile) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("dstm-tep did not stop on SIGTERM")
    log = open(lab.path("tep", "tep.log"), "a")
    started = time.monotonic()
    p = subprocess.Popen(["ip", "netns", "exec", lab.netns("tep"),
                          os.path.join(lab.build, "src/tep/dstm-tep"), "-d", "-c",
                          lab.path("tep", "tep.json")],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    with open(pidfile, "w") as f:
        f.write("%d\n" % p.pid)
    n = 0
    while time.monotonic() - started < 5:
        try:
            n = len(lab.ctl("tep", "bindings", timeout=1))
        except Exception:
            n = 0
        if n == 2:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert n == 2, "bindings after restart: %d" % n
    assert elapsed < 2.0, "bindings restored after %.2f s" % elapsed
    c1, _ = tep["c1"]
    lab.exec("c1", "ping", "-c", "1", "-W", "2", V44, check=True)


def restart_tep(lab, config_text):
    """Stop the TEP, write its configuration, start it again; wait until it answers."""
    pidfile = lab.path("tep", "tep.pid")
    with open(pidfile) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with open(lab.path("tep", "tep.json"), "w") as f:
        f.write(config_text)
    log = open(lab.path("tep", "tep.log"), "a")
    p = subprocess.Popen(["ip", "netns", "exec", lab.netns("tep"),
                          os.path.join(lab.build, "src/tep/dstm-tep"), "-d", "-c",
                          lab.path("tep", "tep.json")],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    with open(pidfile, "w") as f:
        f.write("%d\n" % p.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            return lab.ctl("tep", "status", timeout=1)
        except Exception:
            time.sleep(0.1)
    raise AssertionError("dstm-tep did not come back")


def test_config_errors_name_file_and_line(lab, tep):
    bad = lab.path("tep", "bad.json")
    with open(bad, "w") as f:
        f.write('{\n  "ipv6": "fd00:d57::2",\n  "ipv4": "198.51.100.1",\n'
                '  "pools": ["192.0.2.0/33"],\n  "mode": "learn",\n  "colour": 1\n}\n')
    r = subprocess.run([os.path.join(lab.build, "src/tep/dstm-tep"), "-n", "-c", bad],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 1
    assert bad + ":4: /pools/0:" in r.stderr
    assert bad + ":6: /colour:" in r.stderr
    r = subprocess.run([os.path.join(lab.build, "src/tep/dstm-tep"), "-n", "-c",
                        lab.path("tep", "tep.json")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert '"mode": "server"' in r.stdout


def test_learn_mode(lab, tep):
    """Seed 002 §5.2: the TEP learns from traffic, only inside the pools, and a
    learned binding does not move to another client while it is in use."""
    c1, c1v4 = tep["c1"]
    c2, c2v4 = tep["c2"]
    with open(lab.path("tep", "tep.json")) as f:
        server_config = f.read()
    import json
    cfg = json.loads(server_config)
    cfg["mode"] = "learn"
    cfg["learn_idle"] = 60
    for k in ("listen", "servers"):
        cfg.pop(k, None)
    try:
        st = restart_tep(lab, json.dumps(cfg, indent=2))
        assert st["mode"] == "learn" and st["bindings"] == 0
        before = counters(lab)
        lab.exec("c1", "ping", "-c", "2", "-i", "0.2", "-W", "2", V44, check=True)
        after = wait_delta(lab, before, {"learned": 1, "decap_pkts": 2, "encap_pkts": 2})
        b = binding_of(lab, c1)
        assert b["ipv4"] == c1v4 and b["origin"] == "learned"
        before = after
        send_4in6(lab, "c2", c2, "IP(src='%s', dst='%s')/UDP(sport=1, dport=9)" % (c1v4, V44),
                  "IP(src='203.0.113.9', dst='%s')/UDP(sport=1, dport=9)" % V44)
        wait_delta(lab, before, {"drop_spoofed_v6_src": 1, "drop_no_binding_src": 1,
                                 "learned": 0, "learn_replaced": 0})
        assert binding_of(lab, c1)["ipv4"] == c1v4
        # Forgotten once idle.
        cfg["learn_idle"] = 1
        restart_tep(lab, json.dumps(cfg, indent=2))
        lab.exec("c1", "ping", "-c", "1", "-W", "2", V44, check=True)
        assert binding_of(lab, c1)["origin"] == "learned"
        deadline = time.monotonic() + 6
        while lab.ctl("tep", "bindings") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lab.ctl("tep", "bindings") == []
        assert counters(lab)["learn_expired"] == 1
    finally:
        restart_tep(lab, server_config)
        deadline = time.monotonic() + 5
        while len(lab.ctl("tep", "bindings")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)


# Injection at the TEP (whitepaper 004). Decapsulated packets that
# must not cause answers go to a blackhole route in the TEP's namespace: a
# fragment that never completes at a real host would come back, 30 s later,
# as its time-exceeded error and disturb other tests' counters.
BLACKHOLE = "203.0.113.0/24"
BH = "203.0.113.9"


@pytest.fixture
def blackhole(lab, tep):
    lab.exec("tep", "ip", "route", "add", "blackhole", BLACKHOLE, check=True)
    try:
        yield BH
    finally:
        lab.exec("tep", "ip", "route", "del", "blackhole", BLACKHOLE)


def send_from_v4(lab, *exprs):
    lab.exec("v4", PY, "-c", "from scapy.all import *\nconf.verb=0\n" +
             "".join("send(%s)\n" % e for e in exprs), check=True, timeout=30)


def test_icmp_errors_from_a_client_must_quote_its_own_packets(lab, tep):
    """c2's errors: about a packet sent to c1 (forged), without a quote, hairpinned
    to c1 about a packet c1 did not send (forged), and the two honest ones."""
    c1, c1v4 = tep["c1"]
    c2, c2v4 = tep["c2"]
    err = "IP(src='%s', dst='%%s')/ICMP(type=3, code=3)" % c2v4
    before = counters(lab)
    send_4in6(lab, "c2", c2,
              (err % V44) + "/IP(src='%s', dst='%s')/UDP(sport=53, dport=5000)" % (V44, c1v4),
              err % V44,
              (err % c1v4) + "/IP(src='%s', dst='%s')/UDP(sport=53, dport=5000)" % (V44, c2v4),
              (err % V44) + "/IP(src='%s', dst='%s')/UDP(sport=53, dport=5000)" % (V44, c2v4),
              (err % c1v4) + "/IP(src='%s', dst='%s')/UDP(sport=7, dport=5000)" % (c1v4, c2v4))
    after = wait_delta(lab, before, {"drop_icmp4_forged_from_client": 1,
                                     "drop_icmp4_quote_bad": 1,
                                     "drop_icmp4_forged_to_client": 1,
                                     "decap_pkts": 1, "hairpin_pkts": 1})
    assert drops(after) - drops(before) == 3


def test_icmp_errors_from_the_ipv4_side_must_quote_the_clients_packets(lab, tep):
    """v4 sends c1 errors about c2's packet, about a packet sent to c1, and one
    quoting nothing: none reaches c1."""
    c1, c1v4 = tep["c1"]
    c2, c2v4 = tep["c2"]
    b_before = binding_of(lab, c1)
    before = counters(lab)
    send_from_v4(lab,
                 "IP(dst='%s')/ICMP(type=3,code=3)/IP(src='%s',dst='%s')/UDP(sport=5000,dport=9)"
                 % (c1v4, c2v4, V44),
                 "IP(dst='%s')/ICMP(type=3,code=3)/IP(src='%s',dst='%s')/UDP(sport=9,dport=5000)"
                 % (c1v4, V44, c1v4),
                 "IP(dst='%s')/ICMP(type=11,code=0)" % c1v4)
    after = wait_delta(lab, before, {"drop_icmp4_forged_to_client": 2,
                                     "drop_icmp4_quote_bad": 1, "encap_pkts": 0})
    assert drops(after) - drops(before) == 3
    assert binding_of(lab, c1)["pkts_out"] == b_before["pkts_out"]


def test_fragments_tiny_and_overlapping(lab, tep, blackhole):
    """RFC 1858 / RFC 3128: a first TCP fragment without its whole header, a TCP
    fragment at offset 8 bytes (alone, and after an honest first fragment),
    the reserved flag; a later fragment of c1's whole address passes."""
    c1, c1v4 = tep["c1"]
    ip = "IP(src='%s', dst='%s', %%s)" % (c1v4, blackhole)
    before = counters(lab)
    send_4in6(lab, "c1", c1,
              ip % "flags='MF', proto=6" + "/Raw(b'\\x13\\x88\\x00\\x50' + b'\\x00' * 4)",
              ip % "frag=1, proto=6" + "/Raw(b'\\x00' * 16)",
              ip % "flags='MF', id=77" + "/TCP(sport=5000, dport=80, flags='A')",
              ip % "frag=1, id=77, proto=6" + "/Raw(b'\\x00\\x00\\x00\\x00\\x50\\x02' + b'\\x00' * 10)",
              ip % "flags='evil'" + "/UDP(sport=5000, dport=53)",
              ip % "frag=100, proto=17" + "/Raw(b'x' * 16)")
    after = wait_delta(lab, before, {"drop_v4_frag_tiny": 1, "drop_v4_frag_overlap": 2,
                                     "drop_v4_fragment": 1, "decap_pkts": 2})
    assert drops(after) - drops(before) == 4


def test_shared_address_fragments_and_errors(lab, tep, blackhole):
    """c1 holds ports 1024-2047 of 192.0.2.202 (an operator binding): a first
    fragment with its port passes, a later fragment cannot be filtered; an
    error about its own port passes, one about a port nobody holds, or sent
    by c2 about c1's port, is forged; from the IPv4 side a later fragment and
    an error about another address are dropped."""
    c1, _ = tep["c1"]
    c2, _ = tep["c2"]
    shared = "192.0.2.202"
    lab.ctl("tep", "binding-add", ipv4=shared, ipv6=c1, port_lo=1024, port_hi=2047)
    try:
        err = ("IP(src='%s', dst='%s')/ICMP(type=3, code=3)/IP(src='%s', dst='%s')"
               "/UDP(sport=53, dport=%%d)" % (shared, V44, V44, shared))
        before = counters(lab)
        send_4in6(lab, "c1", c1,
                  "IP(src='%s', dst='%s', flags='MF')/UDP(sport=1500, dport=53)/Raw(b'a' * 16)"
                  % (shared, blackhole),
                  "IP(src='%s', dst='%s', frag=3, proto=17)/Raw(b'b' * 16)" % (shared, blackhole),
                  err % 1500, err % 2100)
        send_4in6(lab, "c2", c2, err % 1500)
        send_from_v4(lab, "IP(dst='%s', frag=3, proto=17)/Raw(b'c' * 16)" % shared,
                     "IP(dst='%s')/ICMP(type=3,code=3)/IP(src='192.0.2.203',dst='%s')"
                     "/UDP(sport=1500,dport=53)" % (shared, V44))
        after = wait_delta(lab, before, {"decap_pkts": 2, "drop_v4_frag_shared": 2,
                                         "drop_icmp4_forged_from_client": 2,
                                         "drop_icmp4_forged_to_client": 1, "encap_pkts": 0})
        assert drops(after) - drops(before) == 5
    finally:
        lab.ctl("tep", "binding-del", ipv4=shared, port_lo=1024)


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


# Many first fragments of distinct datagrams, none ever completed, sent in
# bursts of `pace` (the TEP's raw socket buffer holds a few thousand).
SEND_FIRST_FRAGMENTS = """
import socket, struct, sys, time
src6, src4, dst4 = sys.argv[1:4]
first, n, pace = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_IPIP)
s.bind((src6, 0))
def csum(b):
    t = sum(struct.unpack('!10H', b))
    t = (t & 0xffff) + (t >> 16)
    t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
for i in range(first, first + n):
    payload = struct.pack('!HHHH', 5000, 53, 2008, 0) + bytes(512)
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), i & 0xffff, 0x2000, 64, 17, 0,
                    socket.inet_aton(src4), socket.inet_aton(dst4))
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    s.sendto(h + payload, ("%s", 0))
    if i %% pace == pace - 1:
        time.sleep(0.02)
""" % TEP6


def test_fragments_that_never_complete_cost_the_tep_nothing(lab, tep, blackhole):
    """5,000 first fragments of 5,000 datagrams whose rest never comes: every one
    is forwarded at once and the TEP's resident memory does not grow by what
    holding them would take (it keeps no reassembly state)."""
    c1, c1v4 = tep["c1"]
    with open(lab.path("tep", "tep.pid")) as f:
        pid = int(f.read())

    def burst(first, n, pace):
        before = counters(lab)
        lab.exec("c1", PY, "-c", SEND_FIRST_FRAGMENTS, c1, c1v4, blackhole, str(first), str(n),
                 str(pace), check=True, timeout=60)
        wait_delta(lab, before, {"decap_pkts": n, "drop_v4_frag_tiny": 0}, timeout=10)

    # Warm-up in bursts that queue up, so that every slot of the TEP's
    # receive batch (DP_BATCH buffers, touched only when that many packets
    # come at once) is in memory before the measure.
    burst(0, 1000, 500)
    rss = vm_rss_kib(pid)
    burst(1000, 5000, 100)
    # Holding the 520 bytes of each would take 2.5 MiB; the control socket's
    # JSON replies alone move the heap by some tens of KiB.
    grown = vm_rss_kib(pid) - rss
    assert grown < 256, "dstm-tep grew by %d KiB over 5000 incomplete datagrams" % grown


def test_scenario_reaches_the_tep_and_vpn_refuses_learn_mode(lab, tep):
    """scripts/lab writes the lab's scenario into tep.json; seed 000: in the VPN
    scenario the mapping is the authenticated server's only, so learn mode is a
    configuration error at the line of "mode"."""
    import json
    with open(lab.path("tep", "tep.json")) as f:
        cfg = json.load(f)
    assert cfg["scenario"] == lab.options.get("scenario", "intranet")
    assert lab.ctl("tep", "status")["scenario"] == cfg["scenario"]
    tep_bin = os.path.join(lab.build, "src/tep/dstm-tep")
    bad = lab.path("tep", "vpn-learn.json")
    with open(bad, "w") as f:
        f.write('{\n  "ipv6": "fd00:d57::2",\n  "ipv4": "198.51.100.1",\n'
                '  "scenario": "vpn",\n  "pools": ["192.0.2.0/24"],\n  "mode": "learn"\n}\n')
    r = subprocess.run([tep_bin, "-n", "-c", bad], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 1
    assert bad + ":6: /mode: the vpn scenario refuses learn mode" in r.stderr
    # The same in the intranet scenario is fine, and so is vpn in server mode.
    with open(bad, "w") as f:
        json.dump({"ipv6": "fd00:d57::2", "ipv4": "198.51.100.1", "scenario": "intranet",
                   "pools": ["192.0.2.0/24"], "mode": "learn"}, f)
    r = subprocess.run([tep_bin, "-n", "-c", bad], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    cfg["scenario"] = "vpn"
    with open(bad, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([tep_bin, "-n", "-c", bad], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["scenario"] == "vpn"
    os.unlink(bad)

"""The TSP clients that are deployed (the Hexago/Freenet6 descendants,
"tspc"/"gogoc", in v4v6 mode; RFC 5572), replayed byte for byte by
tsp_replay.py against the lab's dstmd, over TCP and over UDP: ANONYMOUS,
PLAIN (raw and base64; the lab allows it without TLS), DIGEST-MD5 as those
clients split and read it, a UDP answer lost and the request retransmitted,
a wrong password. Every granted address then carries IPv4 through the TEP
(an ICMP echo in 4in6 from the client's namespace to the IPv4-only host and
its reply back), and the keepalive address of the reply is answered by the
TEP inside the tunnel.

The replaying hosts are extra nodes plugged into the lab's bridge
(`scripts/lab plug`, DESIGN §8), x5..x9, running no dstm-client: their
leases are only the replay's.
"""
import json
import os
import time

import pytest

from lab import POOL, SRV6, TEP4, TEP6, V44, Lab

REPLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tsp_replay.py")
LIFETIME = 30
NODES = {"x5": "fd00:d57::15", "x6": "fd00:d57::16", "x7": "fd00:d57::17",
         "x8": "fd00:d57::18", "x9": "fd00:d57::19"}
CAPABILITY = ("CAPABILITY TUNNEL=V4V6 AUTH=SCRAM-SHA-256 AUTH=DIGEST-MD5 AUTH=PLAIN "
              "AUTH=ANONYMOUS\r\n")


@pytest.fixture(scope="module")
def field():
    lab = Lab()
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(clients=1, lifetime=LIFETIME)
        for node, addr in NODES.items():
            lab.plug(node, addr)
        yield lab
    finally:
        lab.down()


def replay(lab, node, **plan):
    plan.setdefault("server", SRV6)
    plan.setdefault("client6", NODES[node])
    r = lab.exec(node, "python3", REPLAY, json.dumps(plan), timeout=90)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "error" not in out, out
    return out


def leases(lab, identity):
    return [l for l in lab.ctl("srv", "leases") if l["identity"] == identity]


def in_pool(a):
    import ipaddress
    return ipaddress.IPv4Address(a) in ipaddress.IPv4Network(POOL)


def check_granted(lab, out, node, identity):
    """200 Success, a reply a deployed client can bring its tunnel up with,
    a lease of that identity, and IPv4 through the TEP both ways."""
    assert out["auth_line"] == "200 Success\r\n"
    assert out["reply_status"] == 200, out["reply"]
    assert out["client6"] == NODES[node]
    assert in_pool(out["client4"])
    assert (out["tep4"], out["tep6"]) == (TEP4, TEP6)
    assert out["lifetime"] == LIFETIME
    assert (out["keepalive_interval"], out["keepalive4"]) == (30, TEP4)
    mine = leases(lab, identity)
    assert [l["ipv4"] for l in mine] == [out["client4"]]
    assert mine[0]["ipv6"] == NODES[node]
    assert out["ping_ok"], "no echo reply from %s through the TEP" % V44
    assert out["keepalive_ok"], "the TEP did not answer the keepalive"


def counter(lab, node, name):
    return lab.ctl(node, "counters").get(name, 0)


# -- a wrong password first, while alice holds no lease

@pytest.mark.parametrize("transport,mech", [("tcp", "PLAIN"), ("tcp", "DIGEST-MD5"),
                                            ("udp", "PLAIN"), ("udp", "DIGEST-MD5")])
def test_wrong_password_gets_300_and_no_lease(field, transport, mech):
    failed = counter(field, "srv", "tsp_auth_failed")
    out = replay(field, "x6", transport=transport, mech=mech, user="alice",
                 password="not-the-password", plain="raw")
    assert out["auth_line"] == "300 Authentication failed\r\n"
    if transport == "tcp":
        assert out["closed_after"]
    assert counter(field, "srv", "tsp_auth_failed") == failed + 1
    assert leases(field, "tsp:alice") == []


def test_capability_lists_the_lab_mechanisms(field):
    out = replay(field, "x5", transport="tcp", mech="ANONYMOUS")
    assert out["capability"] == CAPABILITY
    out = replay(field, "x5", transport="udp", mech="ANONYMOUS")
    assert out["capability"] == CAPABILITY


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_anonymous(field, transport):
    out = replay(field, "x5", transport=transport, mech="ANONYMOUS", ping=V44, keepalive=True)
    check_granted(field, out, "x5", "anon:" + NODES["x5"])


@pytest.mark.parametrize("transport,plain", [("tcp", "raw"), ("tcp", "b64"), ("udp", "raw"),
                                             ("udp", "b64")])
def test_plain_sent_unasked(field, transport, plain):
    raw = counter(field, "srv", "tsp_plain_raw")
    out = replay(field, "x6", transport=transport, mech="PLAIN", user="alice",
                 password="dstm-lab-alice", plain=plain, ping=V44, keepalive=True)
    check_granted(field, out, "x6", "tsp:alice")
    assert counter(field, "srv", "tsp_plain_raw") == raw + (plain == "raw")


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_digest_md5_as_deployed_clients_read_it(field, transport):
    out = replay(field, "x7", transport=transport, mech="DIGEST-MD5", user="alice",
                 password="dstm-lab-alice", ping=V44, keepalive=True)
    # the challenge splits on "," alone: no blank after a comma
    assert ", " not in out["challenge"]
    assert out["challenge"].startswith('realm="dstm",nonce="')
    assert out["challenge"].endswith(',qop="auth",charset=utf-8,algorithm=md5-sess')
    # the read after the response holds the rspauth line and nothing else
    assert out["rspauth_read"].count("\r\n") == 1 and out["rspauth_read"].endswith("\r\n")
    assert out["rspauth_ok"]
    check_granted(field, out, "x7", "tsp:alice")


def test_any_mechanism_picks_digest_md5_as_tspc_does(field):
    out = replay(field, "x7", transport="tcp", mech="any", user="alice",
                 password="dstm-lab-alice", ping=V44, keepalive=True)
    assert out["chosen"] == "DIGEST-MD5"
    check_granted(field, out, "x7", "tsp:alice")


def test_udp_lost_answer_is_sent_again_and_makes_no_second_lease(field):
    creates = counter(field, "srv", "creates")
    again = counter(field, "srv", "udp_retransmits")
    out = replay(field, "x8", transport="udp", mech="ANONYMOUS", lose_create=True, ping=V44,
                 keepalive=True)
    assert out["lost"] == 1
    assert out["answers_to_create"] == 2 and out["answers_identical"]
    check_granted(field, out, "x8", "anon:" + NODES["x8"])
    assert counter(field, "srv", "creates") == creates + 1
    assert counter(field, "srv", "udp_retransmits") >= again + 1


def test_keepalives_are_answered_and_counted_by_the_tep(field):
    before = counter(field, "tep", "keepalive_replies")
    out = replay(field, "x9", transport="tcp", mech="ANONYMOUS", keepalive=True)
    assert out["keepalive_ok"]
    assert counter(field, "tep", "keepalive_replies") >= before + 1


def test_dstm_profile_keeps_its_ok_line(field):
    out = replay(field, "x9", transport="tcp", version="1.0", mech="ANONYMOUS")
    assert out["auth_line"] == "OK Authentication successful\r\n"
    assert out["reply_status"] == 200


def test_reconnect_after_the_lifetime_gets_the_same_address(field):
    first = replay(field, "x9", transport="tcp", mech="ANONYMOUS")
    assert first["reply_status"] == 200
    # Deployed clients close after setup and ask again later, past the lifetime.
    time.sleep(LIFETIME + 5)
    second = replay(field, "x9", transport="udp", mech="ANONYMOUS", ping=V44)
    assert second["reply_status"] == 200
    assert second["client4"] == first["client4"]
    assert second["ping_ok"]

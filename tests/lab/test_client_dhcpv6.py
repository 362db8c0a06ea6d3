"""End-to-end tests of dstm-client's DHCPv6 access module against the real
dstmd in the lab (`scripts/lab up --access dhcpv6`): the seed 002 form
(Global IPv4 Address + IA_NA), option codes moved in both server and
client, delayed authentication (a client with the right key binds, one
with a wrong key drops every reply and counts it), Release on SIGTERM, and
Decline of an address that cannot be used (no TEP named). The traffic and
lease cases common to both access modules are in test_domain.py.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_client_dhcpv6.py
"""

import signal
import time

import pytest

from lab import V44, domain
from test_domain import bound, kill_node, start_node, status, wait_for

KEY = {"realm": "lab.example", "key_id": 7, "secret": "dhcp-lab-secret"}


@pytest.fixture(scope="module")
def lab():
    yield from domain(access="dhcpv6", clients=2)


def write(lab, node, config):
    return lab.write_config(node, "test.json", config)


def restart(lab, node, config):
    """Restart node's daemon with `config` (a dict), written next to its own."""
    prog = {"srv": "dstmd"}.get(node, "dstm-client")
    kill_node(lab, node, signal.SIGTERM)
    start_node(lab, node, prog, write(lab, node, config))


def restore(lab, *nodes):
    for node in nodes:
        kill_node(lab, node, signal.SIGTERM)
        start_node(lab, node, {"srv": "dstmd"}.get(node, "dstm-client"))
    for node in nodes:
        if node != "srv":
            bound(lab, node, timeout=15)


def srv_lease(lab, v4):
    return {l["ipv4"]: l for l in lab.ctl("srv", "leases", all=True)}.get(v4)


def test_bound_over_ia_dstm_and_traffic(lab):
    s = bound(lab, "c1")
    assert s["access"] == "dhcpv6" and s["tep_ipv6"] == "fd00:d57::2"
    lease = srv_lease(lab, s["ipv4"])
    assert lease["state"] == "active" and lease["identity"].startswith("dhcp6:")
    # dstmd took the tunnel address from the message's (global) source
    assert lease["ipv6"] == "fd00:d57::11"
    assert lab.exec("c1", "ping", "-c", "2", "-W", "2", V44).returncode == 0
    n = lab.ctl("c1", "counters")
    assert n["acquisitions"] == 1 and n["dhcp6_tx"] >= 2 and n["dhcp6_rx"] >= 2


def test_release_on_sigterm(lab):
    a = bound(lab, "c2")["ipv4"]
    before = lab.ctl("srv", "counters")["dhcp6_released"]
    kill_node(lab, "c2", signal.SIGTERM)
    try:
        assert lab.ctl("srv", "counters")["dhcp6_released"] == before + 1
        assert srv_lease(lab, a)["state"] != "active"
    finally:
        start_node(lab, "c2", "dstm-client")
        bound(lab, "c2")


def test_seed002_form_and_rapid_commit(lab):
    c = lab.config("c2")
    c["dhcpv6"] = {"form": "global_v4", "rapid_commit": True}
    restart(lab, "c2", c)
    try:
        s = bound(lab, "c2")
        assert s["tep_ipv6"] == "fd00:d57::2"
        assert lab.exec("c2", "ping", "-c", "2", "-W", "2", V44).returncode == 0
    finally:
        restore(lab, "c2")


def test_option_codes_configurable(lab):
    codes = {"ia_dstm": 64001, "tep": 64002, "ports": 64003, "global_v4": 64004}
    s = lab.config("srv")
    s["dhcpv6"]["codes"] = codes
    restart(lab, "srv", s)
    c = lab.config("c2")
    c["dhcpv6"] = {"codes": codes}
    try:
        kill_node(lab, "c2", signal.SIGTERM)
        start_node(lab, "c2", "dstm-client", write(lab, "c2", c))
        assert bound(lab, "c2", timeout=15)["tep_ipv6"] == "fd00:d57::2"
    finally:
        restore(lab, "srv", "c2")


def test_decline_when_no_tep_is_named(lab):
    # The client looks for the TEP under a code the server does not use:
    # the address it is offered cannot carry a packet, so it declines it.
    c = lab.config("c2")
    c["dhcpv6"] = {"codes": {"tep": 64444}}
    before = lab.ctl("srv", "counters")["dhcp6_declined"]
    restart(lab, "c2", c)
    try:
        wait_for(lambda: lab.ctl("c2", "counters")["declines"] >= 1, 10, "a Decline")
        wait_for(lambda: lab.ctl("srv", "counters")["dhcp6_declined"] > before, 5,
                 "dstmd to count the Decline")
        assert status(lab, "c2")["state"] != "bound"
    finally:
        restore(lab, "c2")


def test_authentication(lab):
    s = lab.config("srv")
    s["dhcpv6"]["keys"] = [KEY]
    s["dhcpv6"]["require_auth"] = True
    restart(lab, "srv", s)
    good, bad = lab.config("c1"), lab.config("c2")
    good["dhcpv6"] = {"auth": KEY}
    bad["dhcpv6"] = {"auth": dict(KEY, secret="not-the-secret")}
    try:
        kill_node(lab, "c1", signal.SIGTERM)
        kill_node(lab, "c2", signal.SIGTERM)
        start_node(lab, "c1", "dstm-client", write(lab, "c1", good))
        start_node(lab, "c2", "dstm-client", write(lab, "c2", bad))
        s1 = bound(lab, "c1", timeout=15)
        assert lab.exec("c1", "ping", "-c", "1", "-W", "2", V44).returncode == 0
        assert lab.ctl("srv", "counters")["dhcp6_auth_ok"] >= 1
        assert lab.ctl("c1", "counters")["dhcp6_drop_auth_bad"] == 0
        # the wrong key: every Advertise is dropped and counted, never bound
        wait_for(lambda: lab.ctl("c2", "counters")["dhcp6_drop_auth_bad"] >= 2, 10,
                 "c2 to drop badly signed replies")
        assert status(lab, "c2")["state"] != "bound"
        assert s1["ipv4"] != status(lab, "c2")["ipv4"]
    finally:
        restore(lab, "srv", "c1", "c2")


def test_unauthenticated_server_is_ignored(lab):
    # A client with a key never takes an address from a server that does not sign.
    c = lab.config("c2")
    c["dhcpv6"] = {"auth": KEY}
    restart(lab, "c2", c)
    try:
        wait_for(lambda: lab.ctl("c2", "counters")["dhcp6_drop_auth_bad"] >= 1, 10,
                 "c2 to drop an unsigned Advertise")
        time.sleep(1)
        assert status(lab, "c2")["state"] != "bound"
    finally:
        restore(lab, "c2")


def test_runs_unprivileged(lab):
    # least privilege: user dstm, only CAP_NET_ADMIN and CAP_NET_RAW, seccomp filter mode
    import pwd

    from test_domain import pid_of

    st = dict(line.split(":", 1) for line in open("/proc/%d/status" % pid_of(lab, "c1")))
    uid = pwd.getpwnam("dstm").pw_uid
    assert [int(u) for u in st["Uid"].split()] == [uid] * 4
    assert int(st["CapEff"], 16) == int(st["CapPrm"], 16) == (1 << 12) | (1 << 13)
    assert int(st["CapBnd"], 16) == (1 << 12) | (1 << 13)
    assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "1"
    assert 'privdrop: running as user "dstm"' in lab.log("c1")

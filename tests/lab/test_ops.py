"""Operating the daemons (DESIGN §8 contract): SIGHUP reloads srv/srv.json,
the TEP's and a client's configuration in place without dropping leases,
sessions or traffic, and a broken configuration on SIGHUP leaves the daemon
running as it was; the metrics endpoints of srv and tep serve Prometheus
text that `promtool check metrics` accepts.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_ops.py
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from lab import SRV6, TEP6, V44, domain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRV_METRICS = "http://[%s]:9653/metrics" % SRV6
TEP_METRICS = "http://[%s]:9653/metrics" % TEP6


@pytest.fixture(scope="module")
def lab():
    yield from domain(clients=2)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


def pid_of(lab, node):
    with open(lab.path(node, node + ".pid")) as f:
        return int(f.read())


def alive(pid):
    """Running, or exiting: a zombie leader whose other threads still exit
    holds its files (test_domain.gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split()[2] not in ("Z", "X"):
                return True
        return len(os.listdir("/proc/%d/task" % pid)) > 1
    except FileNotFoundError:
        return False


def log_since(lab, node, mark):
    return lab.log(node)[mark:]


def hup(lab, node):
    """SIGHUP the node's daemon; its log from just before the signal."""
    mark = len(lab.log(node))
    os.kill(pid_of(lab, node), signal.SIGHUP)
    return mark


def edit_config(lab, node, change):
    """Rewrite NODE.json in place (its owner and mode kept) with change(config)."""
    path = lab.path(node, node + ".json")
    with open(path) as f:
        text = f.read()
    cfg = json.loads(text)
    change(cfg)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return text


def restore_config(lab, node, text):
    with open(lab.path(node, node + ".json"), "w") as f:
        f.write(text)


def bound(lab, node, timeout=10):
    return wait_for(lambda: (lambda s: s if s.get("state") == "bound" else None)(
        lab.ctl(node, "status")), timeout, node + " bound")


def lease_of(lab, ipv4):
    return [l for l in lab.ctl("srv", "leases") if l["ipv4"] == ipv4][0]


def test_sighup_lifetime_applies_to_the_next_lease_and_sessions_continue(lab):
    c1 = bound(lab, "c1")["ipv4"]
    c2 = bound(lab, "c2")["ipv4"]
    before = lab.ctl("srv", "status")
    assert lease_of(lab, c1)["expires_in"] > 300  # the lab's lifetime is 600 s
    pid = pid_of(lab, "srv")
    ping = subprocess.Popen(["ip", "netns", "exec", lab.netns("c1"), "ping", "-c", "40",
                             "-i", "0.1", "-W", "1", V44], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    old = edit_config(lab, "srv", lambda c: c.update(lifetime=90))
    try:
        mark = hup(lab, "srv")
        wait_for(lambda: "configuration reloaded" in log_since(lab, "srv", mark), 10,
                 "dstmd to reload")
        assert alive(pid) and pid_of(lab, "srv") == pid
        after = lab.ctl("srv", "status")
        # The TSP sessions of both clients are the same ones: none was dropped.
        assert after["sessions"] == before["sessions"]
        assert lab.ctl("srv", "counters")["reloads"] >= 1
        # c1's lease keeps the lifetime it was granted with ...
        assert lease_of(lab, c1)["expires_in"] > 300
        # ... and c2's next lease gets the new one.
        lab.ctl("srv", "revoke", address=c2)
        new = wait_for(lambda: (lambda s: s if s.get("state") == "bound" and
                                s.get("ipv4") != c2 else None)(lab.ctl("c2", "status")),
                       40, "c2 bound again")
        assert 0 < lease_of(lab, new["ipv4"])["expires_in"] <= 90
        out = ping.communicate(timeout=30)[0]
        assert " 0% packet loss" in out, out
        assert lab.ctl("c1", "status")["ipv4"] == c1
    finally:
        if ping.poll() is None:
            ping.kill()
        restore_config(lab, "srv", old)
        hup(lab, "srv")


def test_sighup_with_a_broken_config_keeps_dstmd_running(lab):
    pid = pid_of(lab, "srv")
    old = edit_config(lab, "srv", lambda c: c.update(lifetime="soon"))
    try:
        mark = hup(lab, "srv")
        log = wait_for(lambda: (lambda t: t if "reload refused" in t else None)(
            log_since(lab, "srv", mark)), 10, "dstmd to refuse the reload")
        assert "srv.json:" in log and "/lifetime" in log, log
        assert alive(pid)
        assert lab.ctl("srv", "status")["program"] == "dstmd"
        # A syntax error too.
        with open(lab.path("srv", "srv.json"), "w") as f:
            f.write("{ \"lifetime\": 60,\n")
        mark = hup(lab, "srv")
        wait_for(lambda: "reload refused" in log_since(lab, "srv", mark), 10,
                 "dstmd to refuse the reload")
        assert alive(pid)
        assert lab.ctl("srv", "counters")["reload_failures"] >= 2
        assert lab.exec("c1", "ping", "-c", "2", "-W", "2", V44).returncode == 0
    finally:
        restore_config(lab, "srv", old)


def test_sighup_refuses_what_needs_a_restart_with_its_line(lab):
    old = edit_config(lab, "srv", lambda c: c.update(database=c["database"] + ".other"))
    try:
        mark = hup(lab, "srv")
        log = wait_for(lambda: (lambda t: t if "reload refused" in t else None)(
            log_since(lab, "srv", mark)), 10, "dstmd to refuse the reload")
        assert "/database: cannot change while dstmd runs" in log, log
        assert alive(pid_of(lab, "srv"))
    finally:
        restore_config(lab, "srv", old)


def test_sighup_reloads_the_tep_and_the_client_in_place(lab):
    a = bound(lab, "c1")["ipv4"]
    bindings = lab.ctl("tep", "counters")["bindings"]
    tep_pid, c1_pid = pid_of(lab, "tep"), pid_of(lab, "c1")
    old = edit_config(lab, "tep", lambda c: c.update(icmp_rate=50))
    try:
        mark = hup(lab, "tep")
        wait_for(lambda: "configuration reloaded" in log_since(lab, "tep", mark), 10,
                 "dstm-tep to reload")
        # The client's log_level is one of what it takes in place.
        c1_level = edit_config(lab, "c1", lambda c: c.update(log_level="debug"))
        try:
            mark = hup(lab, "c1")
            wait_for(lambda: "configuration reloaded" in log_since(lab, "c1", mark), 10,
                     "dstm-client to reload")
            assert "log_level 1" in log_since(lab, "c1", mark)
        finally:
            restore_config(lab, "c1", c1_level)
        assert alive(tep_pid) and alive(c1_pid)
        assert lab.ctl("tep", "counters")["bindings"] == bindings
        assert lab.ctl("c1", "status")["ipv4"] == a
        assert lab.exec("c1", "ping", "-c", "3", "-i", "0.2", "-W", "2", V44).returncode == 0
        # A change the TEP cannot make in place is refused and it goes on.
        edit_config(lab, "tep", lambda c: c.update(mtu=1400))
        mark = hup(lab, "tep")
        log = wait_for(lambda: (lambda t: t if "reload refused" in t else None)(
            log_since(lab, "tep", mark)), 10, "dstm-tep to refuse the reload")
        assert "/mtu: cannot change" in log, log
        assert alive(tep_pid)
        assert lab.exec("c1", "ping", "-c", "2", "-W", "2", V44).returncode == 0
        # And one the client cannot make in place.
        c1_old = edit_config(lab, "c1", lambda c: c.update(interface="dstm9"))
        try:
            mark = hup(lab, "c1")
            log = wait_for(lambda: (lambda t: t if "reload refused" in t else None)(
                log_since(lab, "c1", mark)), 10, "dstm-client to refuse the reload")
            assert "/interface: cannot change while dstm-client runs" in log, log
            assert alive(c1_pid) and lab.ctl("c1", "status")["ipv4"] == a
        finally:
            restore_config(lab, "c1", c1_old)
    finally:
        restore_config(lab, "tep", old)


def test_sighup_adds_a_tep_and_refuses_to_remove_one(lab):
    tep2 = {"name": "tep2", "ipv6": "fd00:d57::9", "ipv4": "198.51.100.9",
            "clients": ["fd00:d57:1::/64"],
            "control": {"address": "[fd00:d57::9]:3653", "mechanism": "SCRAM-SHA-256",
                        "user": "dstmd", "secret": "x"}}
    old = edit_config(lab, "srv", lambda c: c["teps"].append(tep2))
    try:
        mark = hup(lab, "srv")
        wait_for(lambda: "configuration reloaded" in log_since(lab, "srv", mark), 10,
                 "dstmd to reload")
        teps = {t["name"]: t["state"] for t in lab.ctl("srv", "teps")}
        assert teps["tep"] == "up" and teps["tep2"] in ("down", "up"), teps
        restore_config(lab, "srv", old)   # tep2 is gone from the file: refused
        mark = hup(lab, "srv")
        log = wait_for(lambda: (lambda t: t if "reload refused" in t else None)(
            log_since(lab, "srv", mark)), 10, "dstmd to refuse the reload")
        assert 'TEP "tep2" is gone' in log, log
        assert lab.exec("c1", "ping", "-c", "2", "-W", "2", V44).returncode == 0
    finally:
        restore_config(lab, "srv", old)


def pool_size(lab):
    return [p for p in lab.ctl("srv", "pools") if p["name"] == "lab"][0]["size"]


def test_sighup_grows_and_shrinks_a_pool_keeping_the_leases_inside(lab):
    """Lifetime 20 s: a pool that grows lends its new address at once; a lease
    that a shrunk pool leaves outside is logged and kept (its traffic flows)
    until its renewal, where it is revoked: the client and the TEP are told
    and the client gets an address inside the pool. c1, inside, notices
    nothing."""
    lab.up(clients=2, lifetime=20)
    c1 = bound(lab, "c1")["ipv4"]
    c2 = bound(lab, "c2")["ipv4"]
    pid = pid_of(lab, "srv")
    assert pool_size(lab) == 253
    old = edit_config(lab, "srv", lambda c: c["pools"][0].update(exclude=[]))
    mark = hup(lab, "srv")
    wait_for(lambda: "configuration reloaded" in log_since(lab, "srv", mark), 10, "the reload")
    assert pool_size(lab) == 254                      # 192.0.2.1 joined the pool
    restore_config(lab, "srv", old)
    edit_config(lab, "srv", lambda c: c["pools"][0].update(exclude=["192.0.2.1", c2]))
    mark = hup(lab, "srv")
    log = wait_for(lambda: (lambda t: t if "configuration reloaded" in t else None)(
        log_since(lab, "srv", mark)), 10, "the reload")
    assert "on %s is outside the pools now" % c2 in log, log
    assert "1 outside the pools" in log, log
    assert pool_size(lab) == 252 and alive(pid)
    assert {l["ipv4"] for l in lab.ctl("srv", "leases")} >= {c1, c2}
    assert lab.exec("c2", "ping", "-c", "1", "-W", "2", V44).returncode == 0
    # Within a lifetime and a bit, c2 moves into the pool; c1 keeps its address.
    new = wait_for(lambda: (lambda s: s if s.get("state") == "bound" and
                            s.get("ipv4") not in (None, c2) else None)(lab.ctl("c2", "status")),
                   45, "c2 to get an address inside the pool")
    assert new["ipv4"] not in (c2, "192.0.2.1")
    assert lab.ctl("c1", "status")["ipv4"] == c1
    assert lab.exec("c2", "ping", "-c", "2", "-W", "2", V44).returncode == 0
    assert lab.ctl("c2", "counters")["server_deletes"] + \
        lab.ctl("c2", "counters")["renewal_failures"] >= 1
    assert "outside the pools: revoked at its renewal" in log_since(lab, "srv", mark)
    restore_config(lab, "srv", old)
    mark = hup(lab, "srv")
    wait_for(lambda: "configuration reloaded" in log_since(lab, "srv", mark), 10, "the reload")


def scrape(lab, node, url):
    r = lab.exec(node, "curl", "-sf", "--max-time", "10", url)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
@pytest.mark.parametrize("node,url", [("srv", SRV_METRICS), ("tep", TEP_METRICS)])
def test_metrics_are_valid_prometheus_text(lab, node, url):
    text = scrape(lab, node, url)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout


def sample(text, name):
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no sample %s in:\n%s" % (name, text))


def test_metrics_carry_leases_pools_drops_and_latency(lab):
    bound(lab, "c1")
    bound(lab, "c2")
    # Scraped from another node: the endpoint is on the domain, not loopback.
    text = scrape(lab, "c1", SRV_METRICS)
    active = lab.ctl("srv", "counters")["lease_active"]
    assert sample(text, 'dstmd_leases{pool="lab",state="active"}') == active >= 2
    assert sample(text, 'dstmd_pool_addresses{pool="lab"}') == 253
    assert sample(text, 'dstmd_tep_up{tep="tep"}') == 1
    assert sample(text, "dstmd_commit_seconds_count") >= 2
    assert 'dstmd_drops_total{reason="quota_64"}' in text
    tep = scrape(lab, "c1", TEP_METRICS)
    assert sample(tep, "dstm_tep_bindings") == lab.ctl("tep", "counters")["bindings"]
    assert "dstm_tep_drops_total{reason=" in tep
    # Only /metrics is served.
    r = lab.exec("c1", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                 "http://[%s]:9653/" % SRV6)
    assert r.stdout == "404"


def test_the_dashboard_and_rules_name_only_metrics_that_exist(lab):
    """Every metric of etc/grafana/dstm.json and etc/prometheus/dstm.rules.yml
    is one that dstmd or dstm-tep serves (a renamed metric breaks no panel
    silently)."""
    import re
    served = set()
    for node, url in (("srv", SRV_METRICS), ("tep", TEP_METRICS)):
        for line in scrape(lab, node, url).splitlines():
            if line and not line.startswith("#"):
                served.add(re.split(r"[{ ]", line)[0])
    texts = []
    with open(os.path.join(ROOT, "etc", "grafana", "dstm.json")) as f:
        dash = json.load(f)
    texts += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    with open(os.path.join(ROOT, "etc", "prometheus", "dstm.rules.yml")) as f:
        texts += [l.split("expr:", 1)[1] for l in f if "expr:" in l]
    used = {m for t in texts for m in re.findall(r"\b(dstmd?_[a-z0-9_]+)", t)}
    assert used and used <= served, sorted(used - served)


PROGS = {"srv": "src/dstmd/dstmd", "tep": "src/tep/dstm-tep", "c1": "src/client/dstm-client"}
EXAMPLES = {"srv": "dstmd.json", "tep": "dstm-tep.json", "c1": "dstm-client.json"}


def stop_node(lab, node):
    pid = pid_of(lab, node)
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), 10, node + " to stop")


def test_the_examples_of_etc_run_together(lab):
    """etc/dstmd.json, etc/dstm-tep.json and etc/dstm-client.json, as they
    are but for the files they name (the lab keeps its files under
    /run/dstm-lab), make a working domain on the lab's addresses; they are
    the last test of the module since they replace the lab's daemons."""
    for node in ("c2", "c1", "tep", "srv"):
        stop_node(lab, node)
    paths = {
        "srv": {"database": lab.path("srv", "example-leases.db"),
                "control": lab.path("srv", "control.sock")},
        "tep": {"control": lab.path("tep", "control.sock")},
        "c1": {"control": lab.path("c1", "control.sock")},
    }
    shutil.copy(os.path.join(ROOT, "etc", "secrets.json"), lab.path("srv", "example-secrets.json"))
    for node, example in EXAMPLES.items():
        with open(os.path.join(ROOT, "etc", example)) as f:
            cfg = json.load(f)
        for k, v in paths[node].items():
            assert k in cfg, (example, k)
            cfg[k] = v
        if node == "srv":
            cfg["auth"]["secrets"] = lab.path("srv", "example-secrets.json")
        conf = lab.write_config(node, "example.json", cfg)
        r = subprocess.run([os.path.join(lab.build, PROGS[node]), "-n", "-c", conf],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert r.returncode == 0, r.stderr
        log = open(lab.path(node, node + ".log"), "a")
        p = subprocess.Popen(["ip", "netns", "exec", lab.netns(node),
                              os.path.join(lab.build, PROGS[node]), "-d", "-c", conf],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with open(lab.path(node, node + ".pid"), "w") as f:
            f.write("%d\n" % p.pid)
        wait_for(lambda: lab.exec(node, "dstmctl", "-t", "1", "status").returncode == 0, 10,
                 node + " to answer")
    try:
        st = bound(lab, "c1", timeout=20)
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, "\n".join(
            "--- %s\n%s" % (n, lab.log(n)[-1500:]) for n in EXAMPLES)))
    assert lab.exec("c1", "ping", "-c", "3", "-i", "0.2", "-W", "2", V44).returncode == 0
    assert lab.ctl("srv", "leases")[0]["ipv4"] == st["ipv4"]
    assert "dstmd_leases" in scrape(lab, "c1", SRV_METRICS)
    assert "dstm_tep_bindings 1" in scrape(lab, "c1", TEP_METRICS)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_alert_rules_check_and_pass_their_tests():
    d = os.path.join(ROOT, "etc", "prometheus")
    for cmd in (["promtool", "check", "rules", "dstm.rules.yml"],
                ["promtool", "test", "rules", "dstm.rules.test.yml"]):
        r = subprocess.run(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        assert r.returncode == 0, r.stdout

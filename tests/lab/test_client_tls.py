"""End-to-end tests of dstm-client's TSP over TLS in the lab's
vpn scenario, where the clients reach dstmd's TLS listener on port 3654
and check its certificate against the lab's CA (scripts/lab make_pki): the
right CA binds; a wrong CA, a wrong name and a wrong SPKI pin are refused
before a byte of TSP is said, counted (tls_refused) and logged; the right
pin binds without any CA.

Run as root:  DSTM_BUILD=build pytest-3 tests/lab/test_client_tls.py
"""

import base64
import hashlib
import os
import signal
import subprocess
import time

import pytest

from lab import domain
from test_domain import bound, kill_node, start_node, status, wait_for


@pytest.fixture(scope="module")
def lab():
    yield from domain(scenario="vpn", clients=2)


def run_with(lab, node, config):
    path = lab.write_config(node, "tls-test.json", config)
    kill_node(lab, node, signal.SIGTERM)
    start_node(lab, node, "dstm-client", path)


def restore(lab, node):
    kill_node(lab, node, signal.SIGTERM)
    start_node(lab, node, "dstm-client")
    bound(lab, node, timeout=15)


def spki_pin(pem_path):
    der = subprocess.run(
        "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der" % pem_path,
        shell=True, check=True, capture_output=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def refused(lab, node, what):
    wait_for(lambda: lab.ctl(node, "counters")["tls_refused"] >= 1, 10, node + " to refuse")
    time.sleep(0.5)
    n = lab.ctl(node, "counters")
    assert status(lab, node)["state"] != "bound"
    assert n["acquisitions"] == 0 and n["auth_failures"] == 0
    assert "TLS: refusing [fd00:d57::1]:3654: " + what in lab.log(node)


def test_right_ca_binds(lab):
    for node in lab.client_nodes:
        s = bound(lab, node)
        assert s["server"] == "[fd00:d57::1]:3654"
        assert lab.ctl(node, "counters")["tls_refused"] == 0
    assert lab.config("c1")["tls"]["ca"].endswith("/pki/ca.pem")


def test_wrong_ca_is_refused(lab, tmp_path):
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-keyout",
                    str(tmp_path / "other.key"), "-out", str(other), "-subj", "/CN=not the lab"],
                   check=True, capture_output=True)
    c = lab.config("c2")
    c["tls"] = {"ca": str(other)}
    run_with(lab, "c2", c)
    try:
        refused(lab, "c2", "unable to get local issuer certificate")
    finally:
        restore(lab, "c2")


def test_wrong_name_is_refused(lab):
    c = lab.config("c2")
    c["tls"]["name"] = "dstm.example.net"
    run_with(lab, "c2", c)
    try:
        refused(lab, "c2", "hostname mismatch")
    finally:
        restore(lab, "c2")


def test_pins(lab):
    pin = spki_pin(os.path.join(lab.run_dir, "pki", "srv.pem"))
    c = lab.config("c2")
    c["tls"] = {"pin": pin}  # no CA: the pin alone is the trust
    run_with(lab, "c2", c)
    try:
        bound(lab, "c2", timeout=15)
        assert lab.ctl("c2", "counters")["tls_refused"] == 0
        wrong = "sha256//" + base64.b64encode(hashlib.sha256(b"other key").digest()).decode()
        c["tls"] = {"pin": wrong}
        run_with(lab, "c2", c)
        refused(lab, "c2", "its public key does not match the configured pin")
    finally:
        restore(lab, "c2")

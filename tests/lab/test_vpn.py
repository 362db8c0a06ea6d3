"""The VPN scenario of seed 000 in the lab: clients authenticate
with a secret (SCRAM-SHA-256) and are known by it, never by their IPv6
address; ANONYMOUS is not offered; TSP over TLS answers on port 3654 with
a certificate of the lab's CA; traffic still crosses the domain."""

import pytest

from lab import SRV6, V44



@pytest.fixture(scope="module")
def vpn(lab):
    if not (lab.built("dstmd") and lab.built("dstm-tep") and lab.built("dstm-client")):
        pytest.skip("the VPN scenario needs dstmd, dstm-tep and dstm-client built")
    lab.up(scenario="vpn")
    return lab


def test_clients_are_known_by_their_secret(vpn):
    leases = vpn.ctl("srv", "leases")
    assert sorted(l["identity"] for l in leases) == ["tsp:c1", "tsp:c2"]
    assert vpn.exec("c1", "ping", "-c", "2", "-W", "2", V44).returncode == 0


def test_anonymous_is_not_offered(vpn):
    r = vpn.exec("c1", "/usr/bin/python3", "-c",
                 "import socket\n"
                 "s = socket.create_connection(('%s', 3653), timeout=5)\n"
                 "s.sendall(b'VERSION=2.0.0\\r\\n')\n"
                 "print(s.recv(200).decode())" % SRV6, check=True)
    assert "CAPABILITY" in r.stdout and "SCRAM-SHA-256" in r.stdout
    assert "ANONYMOUS" not in r.stdout


def test_tsp_over_tls_on_3654(vpn):
    r = vpn.exec("c1", "/usr/bin/python3", "-c",
                 "import socket, ssl\n"
                 "ctx = ssl.create_default_context(cafile='%s')\n"
                 "s = ctx.wrap_socket(socket.create_connection(('%s', 3654), timeout=5),"
                 " server_hostname='%s')\n"
                 "s.sendall(b'VERSION=2.0.0\\r\\n')\n"
                 "print(s.version(), s.recv(200).decode())"
                 % (vpn.run_dir + "/pki/ca.pem", SRV6, SRV6), check=True)
    assert r.stdout.split()[0] in ("TLSv1.2", "TLSv1.3")
    assert "CAPABILITY TUNNEL=V4V6" in r.stdout

"""A dstmd of a test's own on loopback: a configuration in a temporary
directory (keyword arguments override its top-level keys), start and wait
for the control socket, dstmctl queries, stop or kill. Used by the tests
that drive dstmd without the lab (test_dstmd.py, test_security.py)."""

import json
import os
import resource
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DSTM_BUILD", os.path.join(ROOT, "build"))
DSTMD = os.path.join(BUILD, "src/dstmd/dstmd")
DSTMCTL = os.path.join(BUILD, "src/ctl/dstmctl")
TSP_LOAD = os.path.join(BUILD, "src/tsp/tsp-load")


def free_port():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


class Dstmd:
    def __init__(self, tmp, nofile=None, **over):
        self.tmp = tmp
        self.port = free_port()
        self.sock = os.path.join(tmp, "dstmd.sock")
        self.db = os.path.join(tmp, "leases.db")
        self.nofile = nofile
        cfg = {
            "database": self.db,
            "control": self.sock,
            "lifetime": 600,
            "quarantine": 60,
            "listen": [{"address": "[::1]:%d" % self.port}],
            # The tests speak for many clients from ::1: a trusted relay may name them.
            "auth": {"mechanisms": ["ANONYMOUS"], "relays": ["::1"]},
            "pools": [{"name": "t", "prefixes": ["192.0.2.0/24"], "exclude": ["192.0.2.1"]}],
            "teps": [{"name": "tep1", "ipv6": "fd00:d57::2", "ipv4": "198.51.100.1"}],
        }
        cfg.update(over)
        self.cfg = os.path.join(tmp, "dstmd.json")
        with open(self.cfg, "w") as f:
            json.dump(cfg, f, indent=2)
        self.proc = None
        self.log = None

    def start(self):
        def limit():
            if self.nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

        self.log = open(os.path.join(self.tmp, "dstmd.log"), "ab")
        self.proc = subprocess.Popen([DSTMD, "-d", "-c", self.cfg], stdout=self.log,
                                     stderr=self.log, preexec_fn=limit)
        deadline = time.time() + 10
        while time.time() < deadline:
            assert self.proc.poll() is None, self.logtext()
            if os.path.exists(self.sock):
                r = subprocess.run([DSTMCTL, "-s", self.sock, "status"], capture_output=True,
                                   timeout=10)
                if r.returncode == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError("dstmd did not start: " + self.logtext())

    def logtext(self):
        with open(os.path.join(self.tmp, "dstmd.log"), errors="replace") as f:
            return f.read()[-3000:]

    def ctl(self, *args):
        out = subprocess.run([DSTMCTL, "-s", self.sock, "--json"] + list(args),
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def counters(self):
        return self.ctl("counters")

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log:
            self.log.close()
            self.log = None

    stop = kill

"""Drive scripts/lab from Python: the end-to-end tests bring a DSTM domain of
network namespaces up (DESIGN §8), run commands on its nodes and query the
daemons' control sockets through dstmctl, and always take it down again.

    lab = Lab()                      # DSTM_LAB = "t<pid>", build dir = $DSTM_BUILD or build/
    lab.up(clients=2, access="tsp", scenario="intranet")
    lab.exec("c1", "ping", "-c1", "198.51.100.2").returncode
    lab.ctl("srv", "leases")         # dstmctl --json leases, parsed
    lab.down()
"""

import json
import os
import select
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_SCRIPT = os.path.join(ROOT, "scripts", "lab")

# Where each program lives in a build directory.
PROGRAMS = {
    "dstmd": "src/dstmd/dstmd",
    "dstm-tep": "src/tep/dstm-tep",
    "dstm-client": "src/client/dstm-client",
    "dstmctl": "src/ctl/dstmctl",
}

SRV6 = "fd00:d57::1"
TEP6 = "fd00:d57::2"
TEP4 = "198.51.100.1"
V44 = "198.51.100.2"
POOL = "192.0.2.0/24"


# The programs a whole DSTM domain needs.
DOMAIN_PROGRAMS = ("dstmd", "dstm-tep", "dstm-client", "dstmctl")


def client_ipv6(i):
    """The IPv6 address of client ci (c1 is fd00:d57::11)."""
    return "fd00:d57::%x" % (0x10 + i)


def listening(cmd, timeout=10, **popen):
    """Start `cmd`, a test's server, and return it once it has said "ready" on a line of
    its own (printed, flushed, after its sockets are bound). Under load, starting Python
    in a namespace takes longer than any fixed pause, and a client sent on before the
    server binds meets a refused connection or an unanswered datagram. The server's
    stdout is a pipe: it should print nothing else, or the test reads it. `popen`: more
    arguments for subprocess.Popen (env, stderr)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, **popen)
    line = ""
    if select.select([p.stdout], [], [], timeout)[0]:
        line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        p.wait()
        raise AssertionError("%s did not say it was ready within %d s (said %r)"
                             % (" ".join(cmd[:6]), timeout, line))
    return p


# What a test's far end sends back in hashed_exchange: 64 KiB repeated.
PATTERN = bytes(i * 7 & 255 for i in range(65536))


def hashed_exchange(server_ns, run_client, addr, port, size, back=0):
    """size random bytes from a client to a server in namespace server_ns on
    addr:port, which answers their SHA-256, then sends `back` bytes of
    PATTERN (a multiple of 64 KiB) and closes. run_client(*argv, timeout=)
    runs the client where it belongs (lab.exec for a node, say) and returns
    its CompletedProcess. Returns the client's words: whether the hash
    matched, and the SHA-256 of what came back."""
    srv = listening(
        ["ip", "netns", "exec", server_ns, "python3", "-c",
         "import hashlib,socket\n"
         "t=socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "t.bind(('%s',%d)); t.listen(1)\n"
         "print('ready', flush=True)\n"
         "t.settimeout(20); c,a=t.accept(); c.settimeout(20)\n"
         "h=hashlib.sha256(); n=0\n"
         "while n < %d:\n"
         "    d=c.recv(65536)\n"
         "    if not d: break\n"
         "    h.update(d); n+=len(d)\n"
         "c.sendall(h.hexdigest().encode())\n"
         "c.sendall(bytes(i*7 & 255 for i in range(65536)) * %d); c.close()\n"
         % (addr, port, size, back // 65536)])
    out = run_client("python3", "-c",
                     "import hashlib,os,socket\n"
                     "data=os.urandom(%d)\n"
                     "t=socket.create_connection(('%s',%d),5); t.settimeout(20)\n"
                     "t.sendall(data); got=b''\n"
                     "while len(got) < 64:\n"
                     "    d=t.recv(64-len(got))\n"
                     "    if not d: break\n"
                     "    got+=d\n"
                     "h=hashlib.sha256()\n"
                     "while True:\n"
                     "    d=t.recv(65536)\n"
                     "    if not d: break\n"
                     "    h.update(d)\n"
                     "print(got.decode()==hashlib.sha256(data).hexdigest(), h.hexdigest())\n"
                     % (size, addr, port), timeout=60).stdout
    srv.wait(30)
    return out.split()


class LabError(Exception):
    """scripts/lab failed; the message holds its output (with the failing node's log)."""


class CtlError(Exception):
    """dstmctl failed: returncode 1 is an error reply of the daemon, 2 no daemon or usage."""

    def __init__(self, message, returncode):
        super().__init__(message)
        self.returncode = returncode


class Lab:
    def __init__(self, name=None, build=None):
        self.name = name or "t%d" % os.getpid()
        build = build or os.environ.get("DSTM_BUILD") or os.path.join(ROOT, "build")
        self.build = build if os.path.isabs(build) else os.path.join(ROOT, build)
        self.run_dir = "/run/dstm-lab/" + self.name
        self.clients = 0
        self.options = {}

    # -- the lab's own commands

    def _env(self, extra=None):
        env = dict(os.environ, DSTM_LAB=self.name, DSTM_BUILD=self.build)
        env.update(extra or {})
        return env

    def _lab(self, *args, timeout=180, env=None):
        return subprocess.run(
            [LAB_SCRIPT, *args],
            env=self._env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )

    def up(self, access="tsp", clients=2, scenario="intranet", lifetime=None, timeout=180,
           relays=(), dataplane=None, portset=None, store=None, servers=None, teps=None):
        """Bring the lab up (taking down a previous one of this name); LabError if it fails.

        relays: the DHCPv6 relays dstmd trusts (addresses; none by default).
        dataplane: the TEP's data plane (xdp, tun, auto; default $DSTM_DATAPLANE or auto).
        portset="psid": the pool is a PSID pool and dstmd serves lwB4s (RFC 7596/7598).
        store="postgresql": node db holds the leases; servers=2 adds srv2 on it.
        teps=2 adds tep2, the backup of tep (the TUN data plane)."""
        env = {}
        if lifetime is not None:
            env["DSTM_LAB_LIFETIME"] = str(lifetime)
        if relays:
            env["DSTM_LAB_RELAYS"] = " ".join(relays)
        dataplane = dataplane or os.environ.get("DSTM_DATAPLANE") or "auto"
        extra = ["--portset", portset] if portset else []
        if store:
            extra += ["--store", store]
        if servers:
            extra += ["--servers", str(servers)]
        if teps:
            extra += ["--teps", str(teps)]
        r = self._lab("up", "--access", access, "--clients", str(clients),
                      "--scenario", scenario, "--dataplane", dataplane, *extra,
                      timeout=timeout, env=env)
        if r.returncode != 0:
            raise LabError("scripts/lab up failed (exit %d):\n%s" % (r.returncode, r.stdout))
        self.clients = clients
        self.options = {"access": access, "clients": clients, "scenario": scenario,
                        "lifetime": lifetime, "dataplane": dataplane, "portset": portset,
                        "store": store, "servers": servers, "teps": teps}
        return r.stdout

    def down(self):
        r = self._lab("down", timeout=120)
        self.clients = 0
        if r.returncode != 0:
            raise LabError("scripts/lab down failed (exit %d):\n%s" % (r.returncode, r.stdout))
        return r.stdout

    def plug(self, node, addr):
        """Plug another host (named x…) into the bridge with IPv6 address addr (DESIGN §8)."""
        r = self._lab("plug", node, addr, timeout=60)
        if r.returncode != 0:
            raise LabError("scripts/lab plug failed (exit %d):\n%s" % (r.returncode, r.stdout))
        return r.stdout

    def status(self):
        return self._lab("status", timeout=60).stdout

    # -- nodes

    @property
    def client_nodes(self):
        return ["c%d" % i for i in range(1, self.clients + 1)]

    def nodes(self):
        return ["sw", "srv", "tep", "v4"] + self.client_nodes

    def netns(self, node):
        return "%s-%s" % (self.name, node)

    def namespaces(self):
        """The namespaces of this lab that exist now."""
        out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        return sorted(n for n in names if n.startswith(self.name + "-"))

    def path(self, node, *parts):
        """A file of a node under /run/dstm-lab/LAB/NODE/."""
        return os.path.join(self.run_dir, node, *parts)

    def built(self, program):
        """True when `program` (dstmd, dstm-tep, dstm-client, dstmctl) exists in the build."""
        return os.access(os.path.join(self.build, PROGRAMS[program]), os.X_OK)

    def missing(self, programs=DOMAIN_PROGRAMS):
        """The programs of `programs` that are not built."""
        return [p for p in programs if not self.built(p)]

    def config(self, node):
        """The configuration scripts/lab wrote for a node."""
        with open(self.path(node, node + ".json")) as f:
            return json.load(f)

    def write_config(self, node, name, config):
        """Write another configuration file for a node; returns its path."""
        path = self.path(node, name)
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def exec(self, node, *cmd, timeout=30, check=False, input=None):
        """Run cmd in the node's namespace (build programs first in PATH, DSTMCTL_SOCKET set).

        cmd is an argument vector; a single string holding spaces is a shell command line.
        """
        if len(cmd) == 1 and any(c.isspace() for c in cmd[0]):
            cmd = ("sh", "-c", cmd[0])
        r = subprocess.run(
            [LAB_SCRIPT, "exec", node, *cmd],
            env=self._env(),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        if check and r.returncode != 0:
            raise AssertionError("%s: %s exited %d\nstdout:\n%s\nstderr:\n%s"
                                 % (node, " ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def ctl(self, node, command, timeout=10, **args):
        """dstmctl --json COMMAND on the node's control socket; the parsed result.

        Keyword arguments become the command's args with their JSON types kept
        (lab.ctl("srv", "revoke", address="192.0.2.10")). CtlError on failure.
        """
        words = ["%s:=%s" % (k, json.dumps(v))
                 for k, v in args.items()]
        r = self.exec(node, "dstmctl", "--json", "-t", str(timeout), command, *words,
                      timeout=timeout + 10)
        if r.returncode != 0:
            raise CtlError("%s: dstmctl %s: %s" % (node, command, r.stderr.strip()), r.returncode)
        return json.loads(r.stdout)

    def log(self, node):
        """The node's log so far ('' when there is none)."""
        try:
            with open(self.path(node, node + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def domain(**options):
    """The body of a module fixture: a lab of the whole domain brought up with
    `options` (those of Lab.up), skipped when a program is not built, always
    taken down. Use: `yield from domain(scenario="vpn")`."""
    import pytest

    lab = Lab()
    missing = lab.missing()
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing))
    try:
        lab.up(**options)
        yield lab
    finally:
        lab.down()

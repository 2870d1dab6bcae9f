"""Separate hosts on the machine running the tests, for tests/integration/test_multi_host.py.

Each host is a network namespace (`ip netns`) with its own address, its own directory for a
disk and its own processes; the hosts reach each other only through a veth each into one
bridge. The bridge lives in a namespace of its own, so the machine's firewall never sees
their traffic. The test process is one more host, through a veth from the machine's own
namespace, at the network's first address. Nothing is sent to any address outside it.
Needs root (CI runs as root); `Network.create` fails, naming why, when namespaces cannot be
made.
"""

import contextlib
import ctypes
import glob
import os
import pwd
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from django.db import connections

from tests.integration.faults import PROJECT_ROOT, wait_for_port

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def _free_subnet() -> str:
    """A 10.231.N.0/24 no interface of the machine's namespace is on (the only place the
    network's route could collide with another)."""
    used = _ip("-o", "-4", "addr", "show")
    free = [n for n in range(256) if f" 10.231.{n}." not in used]
    if not free:
        raise RuntimeError("every 10.231.N.0/24 is in use on this machine")
    return f"10.231.{random.choice(free)}"


class Host:
    """One namespace: an address on the network, a disk, the processes started on it."""

    def __init__(self, namespace: str, address: str, disk: Path):
        self.namespace = namespace
        self.address = address
        self.disk = disk
        self.launcher = ("ip", "netns", "exec", namespace)

    def start(
        self, name: str, command: list[str], *, env: dict, cwd: Path = PROJECT_ROOT
    ) -> subprocess.Popen:
        """Run `command` on this host, its output in `name`.log on the host's disk."""
        log_path = self.disk / f"{name}.log"
        process = subprocess.Popen(
            [*self.launcher, *command],
            cwd=cwd,
            env=env,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        process.log_path = log_path
        return process

    def pids(self) -> list[int]:
        return [int(pid) for pid in _ip("netns", "pids", self.namespace).split()]

    def crash(self, timeout: float = 30) -> None:
        """SIGKILL every process on the host at once, as a host that loses power."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {pids} on {self.namespace} survived SIGKILL")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    @contextlib.contextmanager
    def inside(self):
        """Run this thread on the host's network: sockets made meanwhile stay on it.

        For the test's own servers (a webhook receiver, an upstream model): one made inside
        listens on the host, and its serving threads answer there from wherever they run.
        """
        with (
            open(f"/run/netns/{self.namespace}") as host,
            open("/proc/thread-self/ns/net") as home,
        ):
            _setns(host.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


class Network:
    """Hosts on one bridge; `destroy` kills their processes and removes every namespace."""

    def __init__(self, disks: Path):
        self.tag = uuid.uuid4().hex[:6]
        self.subnet = self.cidr = self.address = ""  # chosen by `create`
        self.disks = disks
        self.hosts: dict[str, Host] = {}
        self._switch = f"imagen-{self.tag}-switch"
        self._own_leg = f"im{self.tag}"
        self._namespaces: list[str] = []

    def create(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("network namespaces need root; run the tests as root, as CI does")
        if shutil.which("ip") is None:
            raise RuntimeError("`ip` (iproute2) is not installed")
        self.subnet = _free_subnet()
        self.cidr = f"{self.subnet}.0/24"
        self.address = f"{self.subnet}.1"  # the test process's
        self._add_namespace(self._switch)
        _ip("-n", self._switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self._switch, "link", "set", "br0", "up")
        _ip(
            *("link", "add", self._own_leg, "type", "veth"),
            *("peer", "name", "p1", "netns", self._switch),
        )
        _ip("-n", self._switch, "link", "set", "p1", "master", "br0", "up")
        _ip("addr", "add", f"{self.address}/24", "dev", self._own_leg)
        _ip("link", "set", self._own_leg, "up")

    def host(self, name: str) -> Host:
        number = len(self.hosts) + 10
        namespace = f"imagen-{self.tag}-{name}"
        self._add_namespace(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")
        leg = f"p{number}"
        _ip(
            *("-n", self._switch, "link", "add", leg, "type", "veth"),
            *("peer", "name", "eth0", "netns", namespace),
        )
        _ip("-n", self._switch, "link", "set", leg, "master", "br0", "up")
        address = f"{self.subnet}.{number}"
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        disk = self.disks / name
        disk.mkdir()
        (disk / "tmp").mkdir()
        self.hosts[name] = Host(namespace, address, disk)
        return self.hosts[name]

    def _add_namespace(self, namespace: str) -> None:
        _ip("netns", "add", namespace)
        self._namespaces.append(namespace)

    def destroy(self) -> None:
        if not self._namespaces:
            return  # `create` failed before making any
        for host in self.hosts.values():
            with contextlib.suppress(RuntimeError):
                host.crash()
        # Deleting a namespace deletes the veth ends in it, and their peers, but later.
        with contextlib.suppress(RuntimeError):
            _ip("link", "delete", self._own_leg)
        for namespace in reversed(self._namespaces):
            with contextlib.suppress(RuntimeError):
                _ip("netns", "delete", namespace)


class PostgresServer:
    """A throw-away PostgreSQL cluster on `host`, trusting every address of `cidr`.

    PostgreSQL refuses to run as root, so under root it runs as the `postgres` user.
    """

    PORT = 5432

    def __init__(self, host: Host, cidr: str):
        self.host = host
        self.cidr = cidr
        self.process = None
        self._dir = None

    def url(self, database: str) -> str:
        return f"postgres://postgres@{self.host.address}:{self.PORT}/{database}"

    def start(self) -> None:
        versions = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2])
        )
        if not versions:
            raise RuntimeError("no PostgreSQL server in /usr/lib/postgresql/*/bin")
        bin_dir = Path(versions[-1])
        # Outside the test's temporary folders, which only root may enter.
        self._dir = Path(tempfile.mkdtemp(prefix="imagen-multi-host-db-"))
        as_postgres = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._dir, user.pw_uid, user.pw_gid)
            as_postgres = ["runuser", "-u", "postgres", "--"]
        data = self._dir / "data"
        subprocess.run(
            [
                *(*as_postgres, bin_dir / "initdb", "-D", data),
                *("-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"),
            ],
            cwd=self._dir,
            capture_output=True,
            check=True,
        )
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.cidr} trust\n")
        self.process = self.host.start(
            "postgres",
            [
                *as_postgres,
                *(str(bin_dir / "postgres"), "-D", str(data), "-k", str(self._dir)),
                *("-h", self.host.address, "-p", str(self.PORT)),
                # Durability is not what this server is for.
                *("-c", "fsync=off", "-c", "synchronous_commit=off"),
                *("-c", "full_page_writes=off"),
            ],
            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
            cwd=self._dir,
        )
        wait_for_port(self.PORT, self.process, timeout=60, host=self.host.address)
        # Listening is not yet accepting connections: recovery or start-up may still run.
        ready = subprocess.run(
            [bin_dir / "pg_isready", "-h", self.host.address, "-p", str(self.PORT), "-t", "60"],
            capture_output=True,
            check=False,
        )
        assert ready.returncode == 0, self.process.log_path.read_text()

    def remove(self) -> None:
        """Kill the server, with every other process of its host, and delete its files."""
        with contextlib.suppress(RuntimeError):
            self.host.crash()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def this_process_on_database(url: str):
    """Point this process's own database connection at `url` (a PostgreSQL of the hosts),
    for the test's factories and its reads of the outcome; put it back after."""
    import environ

    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(
        {
            key: value
            for key, value in environ.Env.db_url_config(url).items()
            if key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")
        }
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)

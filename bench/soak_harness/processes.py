"""The product's processes, started from the Procfile's lines, and the servers around them."""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
LOCALSTRIPE = ROOT / "scripts" / "localstripe_loopback.py"
_VARIABLE = re.compile(r"\$\{([A-Z_]+):-([^}]*)\}")
# The PostgreSQL application name of every product process: the database fault terminates
# only their connections, never the harness's nor another database's.
PRODUCT_APPLICATION_NAME = "imagen-soak-product"


def procfile_command(process_type: str, env: dict) -> list[str]:
    """The Procfile line of `process_type`, its variables expanded from `env` as a shell would."""
    line = dict(parse_procfile(PROCFILE.read_text()).processes)[process_type]
    return shlex.split(_VARIABLE.sub(lambda m: env.get(m.group(1)) or m.group(2), line))


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class Managed:
    """One process the harness starts, kills with SIGKILL (its whole group) and restarts."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path, port=None):
        self.name, self.command, self.env, self.port = name, command, env, port
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> None:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own group: kill -9 reaches a prefork worker's or gunicorn's children too.
            start_new_session=True,
        )
        log.close()
        if wait and self.port:
            wait_for_port(self.port, self.process)

    def kill(self) -> None:
        """kill -9 of the process and its children, as a crashed host or the OOM killer does."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL if it takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()


class Product:
    """Redis, localstripe and every Procfile process: two web, two generation workers, the
    upstream worker, the webhooks worker and its slow lane, and beat, each with the
    operator's environment."""

    def __init__(self, *, ports: "Ports", env: dict, log_dir: Path, work_dir: Path):
        self.ports, self.log_dir = ports, log_dir
        python_bin = str(Path(sys.executable).parent)
        base_env = {**env, "PATH": f"{python_bin}:{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
        redis_dir = work_dir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.redis = Managed(
            "redis",
            [
                *("redis-server", "--port", str(ports.redis), "--bind", "127.0.0.1"),
                # Its data survives the stop-and-restart fault, as a production Redis's does.
                *("--dir", str(redis_dir), "--appendonly", "yes", "--appendfsync", "always"),
                *("--save", ""),
            ],
            base_env,
            log_dir,
            port=ports.redis,
        )
        self.localstripe = Managed(
            "localstripe",
            # Each start from scratch: localstripe rewrites its whole store on every change,
            # so one kept through 30 minutes of purchases got too slow to answer, or to
            # start again within a minute (2026-12-03). Its file is the run's own.
            [
                sys.executable,
                str(LOCALSTRIPE),
                "--port",
                str(ports.localstripe),
                "--from-scratch",
                "--state-file",
                str(work_dir / "localstripe.pickle"),
            ],
            base_env,
            log_dir,
            port=ports.localstripe,
        )
        product_env = {**base_env, "PGAPPNAME": PRODUCT_APPLICATION_NAME}
        self.web = []
        for number, port in enumerate(ports.web, start=1):
            web_env = {**product_env, "PORT": str(port), "WEB_HOST": "127.0.0.1"}
            # Two masters on one host would otherwise share gunicorn's control socket.
            command = [*procfile_command("web", web_env), "--no-control-socket"]
            self.web.append(Managed(f"web.{number}", command, web_env, log_dir, port=port))
        self.workers = []
        for number in (1, 2):
            command = procfile_command("worker", product_env)
            # Two generation workers on one host need two Celery node names.
            command[command.index("--hostname") + 1] = f"generation{number}@%h"
            self.workers.append(Managed(f"worker.{number}", command, product_env, log_dir))
        # No soak model is upstream's: its process idles, started as production starts it.
        self.upstream = Managed(
            "upstream.1", procfile_command("upstream", product_env), product_env, log_dir
        )
        beat_env = {**product_env}
        self.webhooks = Managed(
            "webhooks.1", procfile_command("webhooks", product_env), product_env, log_dir
        )
        self.webhooks_slow = Managed(
            "webhooks_slow.1",
            procfile_command("webhooks_slow", product_env),
            product_env,
            log_dir,
        )
        beat_command = [
            *procfile_command("beat", beat_env),
            f"--schedule={work_dir / 'celerybeat-schedule'}",
        ]
        self.beat = Managed("beat.1", beat_command, beat_env, log_dir)

    @property
    def processes(self) -> list[Managed]:
        return [
            *self.web,
            *self.workers,
            self.upstream,
            self.webhooks,
            self.webhooks_slow,
            self.beat,
        ]

    def start(self) -> None:
        self.redis.start()
        self.localstripe.start()
        for managed in self.processes:
            managed.start(wait=False)
        for managed in self.web:
            wait_for_port(managed.port, managed.process, timeout=120)

    def stop(self) -> None:
        for managed in self.processes:
            managed.stop()
        self.localstripe.stop()
        self.redis.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Ports:
    """Every port the run listens on: from `base` on, or free ones when `base` is 0."""

    COUNT = 8

    def __init__(self, base: int):
        numbers = [base + offset for offset in range(self.COUNT)] if base else []
        while len(numbers) < self.COUNT:
            port = free_port()
            if port not in numbers:
                numbers.append(port)
        self.web = numbers[0:2]
        self.redis = numbers[2]
        self.localstripe = numbers[3]
        self.receivers = numbers[4:8]

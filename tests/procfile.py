"""The repository's Procfile, read the way honcho reads it, so the tests' workers consume
the queues production's do."""

import re
import shlex
from pathlib import Path

from honcho.environ import parse_procfile

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"
# `${NAME:-default}`: the value a process gets when the operator sets nothing.
_DEFAULTED = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


def processes() -> dict[str, str]:
    return dict(parse_procfile(PROCFILE.read_text()).processes)


def arguments(process_type: str) -> list[str]:
    """The process's command line with every variable at its default."""
    return shlex.split(_DEFAULTED.sub(r"\1", processes()[process_type]))


def queues(process_type: str) -> list[str]:
    """The queues a worker line consumes (`-Q`)."""
    command = arguments(process_type)
    return command[command.index("-Q") + 1].split(",")

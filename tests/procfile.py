"""The repository's Procfile, read the way honcho reads it, so the tests' workers consume
the queues production's do."""

import re
import shlex
from itertools import takewhile
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


def environment(process_type: str) -> dict[str, str]:
    """The variables the line sets for its command (`env NAME=value … command`)."""
    command = arguments(process_type)
    if command[0] != "env":
        return {}
    assignments = takewhile(lambda word: "=" in word, command[1:])
    return dict(word.split("=", 1) for word in assignments)


def queues(process_type: str) -> list[str]:
    """The queues a worker line consumes (`-Q`)."""
    command = arguments(process_type)
    return command[command.index("-Q") + 1].split(",")

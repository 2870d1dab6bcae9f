#!/usr/bin/env bash
# Audit the pinned dependencies (pyproject.toml's `test` group, which includes `main`)
# against PyPI's vulnerability data with pip-audit. A separate step from scripts/test.sh:
# it needs PyPI's JSON API (a mirror without it cannot answer), so it runs where that is
# reachable, as in CI. --strict: a package that could not be audited fails the step
# instead of passing it silently.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/pip-audit ] || .venv/bin/python -m pip install --quiet --group test
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
.venv/bin/python - >"$requirements" <<'PY'
import tomllib

groups = tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]
pins: list[str] = []


def walk(name: str) -> None:
    for item in groups[name]:
        if isinstance(item, dict):
            walk(item["include-group"])
        elif item not in pins:
            pins.append(item)


walk("test")
print("\n".join(pins))
PY
.venv/bin/pip-audit --requirement "$requirements" --no-deps --disable-pip --strict \
  --progress-spinner off "$@"

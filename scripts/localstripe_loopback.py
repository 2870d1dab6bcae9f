"""Run localstripe, the embedded stand-in for Stripe, on 127.0.0.1 only.

localstripe's own command listens on every interface (it binds `::`) and has no option to
choose another address, and it accepts any `sk_*` key: anyone who could reach it could
create and confirm payments. This serves the same application on the loopback interface,
with the command's own options. The localstripe tests start it this way, so a localstripe
upgrade that moves `localstripe.server.app` or `store` fails them at once.

`--state-file` keeps localstripe's objects in a file of the caller's: localstripe itself
keeps them in /tmp/localstripe.pickle, shared by every localstripe on the machine and
rewritten in place, so a localstripe killed mid-write cannot start again from it.
"""

import argparse
import logging
import os
import pickle
from pathlib import Path

from aiohttp import web
from localstripe.resources import store
from localstripe.server import app


def keep_state_in(path: Path) -> None:
    """Save the store to `path` (replaced whole, never half-written) on every change."""

    def dump_to_disk(self) -> None:
        partial = path.with_name(f"{path.name}.partial")
        with partial.open("wb") as file:
            pickle.dump(self, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)

    def try_load_from_disk(self) -> None:
        if path.exists():
            with path.open("rb") as file:
                saved = pickle.load(file)  # noqa: S301 - the file this process wrote
            self.clear()
            self.update(saved)

    # On the class: the store pickles its instance attributes, and functions cannot be.
    type(store).dump_to_disk = dump_to_disk
    type(store).try_load_from_disk = try_load_from_disk


def main() -> None:
    parser = argparse.ArgumentParser(description="localstripe on 127.0.0.1 only")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--from-scratch", action="store_true")
    parser.add_argument("--state-file", type=Path, help="where the objects are kept")
    args = parser.parse_args()
    if args.state_file:
        keep_state_in(args.state_file.resolve())
    if not args.from_scratch:
        store.try_load_from_disk()
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.DEBUG)
    access_log.addHandler(logging.StreamHandler())
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=access_log)


if __name__ == "__main__":
    main()

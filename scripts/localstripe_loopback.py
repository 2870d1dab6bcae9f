"""Run localstripe, the embedded stand-in for Stripe, on 127.0.0.1 only.

localstripe's own command listens on every interface (it binds `::`) and has no option to
choose another address, and it accepts any `sk_*` key: anyone who could reach it could
create and confirm payments. This serves the same application on the loopback interface,
with the command's own options. The localstripe tests start it this way, so a localstripe
upgrade that moves `localstripe.server.app` or `store` fails them at once.
"""

import argparse
import logging

from aiohttp import web
from localstripe.resources import store
from localstripe.server import app


def main() -> None:
    parser = argparse.ArgumentParser(description="localstripe on 127.0.0.1 only")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--from-scratch", action="store_true")
    args = parser.parse_args()
    if not args.from_scratch:
        store.try_load_from_disk()
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.DEBUG)
    access_log.addHandler(logging.StreamHandler())
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=access_log)


if __name__ == "__main__":
    main()

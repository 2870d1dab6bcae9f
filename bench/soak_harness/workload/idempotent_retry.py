"""The same request (same key, same body) sent three times at once, as a client retrying
on a timeout does: at most one job and one charge, the others replays or 409s."""

import threading

from ..context import call
from .submit import build

COPIES = 3


def run(ctx, tenant, rng) -> None:
    number = ctx.next_number()
    prompt = f"soak request {number}: three copies of one request"
    key = f"soak-{number}-same"
    dialect = rng.choice(["async", "v2", "sync"])
    path, body, headers = build(ctx, tenant, dialect, prompt, seed=rng.randrange(2**32))
    seeds = [rng.random() for _ in range(COPIES)]

    def send(copy_seed):
        import random

        call(
            ctx,
            tenant,
            f"idempotent_retry:{dialect}",
            "POST",
            path,
            random.Random(copy_seed),
            json=body,
            headers=headers,
            submission=True,
            prompt=prompt,
            idempotency_key=key,
        )

    threads = [threading.Thread(target=send, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

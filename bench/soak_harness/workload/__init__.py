"""The workload's actions, one module each, and how often each is picked."""

from . import (
    auto_recharge,
    budget_hit,
    buy_pack,
    cancel_race,
    concurrent_limit_hit,
    idempotent_retry,
    staff_adjustment,
    submit,
    webhook_endpoints,
)

# name -> (weight, run(ctx, tenant, rng))
ACTIONS = {
    "submit": (20, submit.run),
    "idempotent_retry": (3, idempotent_retry.run),
    "cancel_race": (3, cancel_race.run),
    "buy_pack": (1, buy_pack.run),
    "webhook_endpoints": (2, webhook_endpoints.run),
    "staff_adjustment": (1, staff_adjustment.run),
    "concurrent_limit_hit": (1, concurrent_limit_hit.run),
    "budget_hit": (1, budget_hit.run),
    "auto_recharge": (1, auto_recharge.run),
}

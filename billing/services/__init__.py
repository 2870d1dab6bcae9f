"""Every write and business rule of billing, one module per concern.

`ledger` moves credits (and is the only writer of ledger entries), `low_balance` says when
they run low, `budgets` holds the monthly budgets (and alerts owners as they are used),
`grants` gives the free plan's monthly credits and expires grants, `plans` finds plans,
`customers` holds the Stripe customer and its cards, `packs` sells credit packs (and
credits those whose Stripe event was lost),
`subscriptions` changes plans and applies what Stripe says about subscriptions, `invoices`
issues our invoices, `catalog` keeps Stripe's prices and products in step,
`auto_recharge` keeps an owner's auto-recharge and opens an attempt when the balance falls
below its threshold, `recharging` charges that attempt.
Callers use the names re-exported here (`billing.services.reserve_credits`).
"""

from billing.errors import BudgetExceeded, InsufficientCredits, PlanChangeInProgress
from billing.months import month_of
from billing.selectors import owner_emails
from billing.services.auto_recharge import disable_auto_recharge, enable_auto_recharge
from billing.services.budgets import (
    announce_budget_used_up,
    set_api_key_credit_limit,
    set_organization_budget,
)
from billing.services.catalog import sync_stripe_catalog
from billing.services.customers import (
    customer_portal_url,
    ensure_stripe_customer,
    owned_payment_method,
    replace_card,
    save_card,
    start_card_setup,
)
from billing.services.grants import (
    EXPIRY_LOOKBACK,
    add_months,
    expire_credits,
    grant_monthly_credits,
    grant_signup_credits,
    included_credit_period,
    organizations_with_expired_grants,
)
from billing.services.invoices import invoice_event_data, issue_invoice
from billing.services.ledger import (
    Kind,
    adjust_credits,
    expire_grant,
    grant_credits,
    refund_reservation,
    reserve_credits,
    reserve_credits_in_one_round_trip,
)
from billing.services.packs import (
    PackCheckout,
    PaymentNotRecorded,
    apply_pack_payment,
    buy_pack,
    charge_pack_purchase,
    reconcile_pack_purchase,
    record_pack_payment_failure,
    uncredited_pack_purchases,
)
from billing.services.plans import plan_by_slug
from billing.services.recharging import recharge, send_unsent_recharges
from billing.services.subscriptions import (
    ENDED_STATUSES,
    LIVE_STATUSES,
    PLAN_CHANGE_LOCK_SECONDS,
    apply_paid_invoice,
    change_plan,
    reconcile_subscription,
    record_invoice_payment_failure,
    sync_subscription,
)

__all__ = [
    "ENDED_STATUSES",
    "EXPIRY_LOOKBACK",
    "LIVE_STATUSES",
    "PLAN_CHANGE_LOCK_SECONDS",
    "BudgetExceeded",
    "InsufficientCredits",
    "Kind",
    "PackCheckout",
    "PaymentNotRecorded",
    "PlanChangeInProgress",
    "add_months",
    "adjust_credits",
    "announce_budget_used_up",
    "apply_pack_payment",
    "apply_paid_invoice",
    "buy_pack",
    "change_plan",
    "charge_pack_purchase",
    "customer_portal_url",
    "disable_auto_recharge",
    "enable_auto_recharge",
    "ensure_stripe_customer",
    "expire_credits",
    "expire_grant",
    "grant_credits",
    "grant_monthly_credits",
    "grant_signup_credits",
    "included_credit_period",
    "invoice_event_data",
    "issue_invoice",
    "month_of",
    "organizations_with_expired_grants",
    "owned_payment_method",
    "owner_emails",
    "plan_by_slug",
    "recharge",
    "reconcile_pack_purchase",
    "reconcile_subscription",
    "record_invoice_payment_failure",
    "record_pack_payment_failure",
    "refund_reservation",
    "replace_card",
    "reserve_credits",
    "reserve_credits_in_one_round_trip",
    "save_card",
    "send_unsent_recharges",
    "set_api_key_credit_limit",
    "set_organization_budget",
    "start_card_setup",
    "sync_stripe_catalog",
    "sync_subscription",
    "uncredited_pack_purchases",
]

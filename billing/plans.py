"""The plans and packs the product ships with; the seed migration and tests read these."""

DEFAULT_PLAN_SLUG = "free"

PLANS = {
    "free": {
        "name": "Free",
        "monthly_price_cents": 0,
        "monthly_credits": 50,
        "requests_per_minute": 10,
        "requests_per_day": 100,
        "output_retention_days": 1,
        "max_concurrent_jobs": 2,
        "max_webhook_endpoints": 10,
        "sort_order": 0,
    },
    "pro": {
        "name": "Pro",
        "monthly_price_cents": 2900,
        "monthly_credits": 1000,
        "requests_per_minute": 100,
        "requests_per_day": 10_000,
        "output_retention_days": 30,
        "max_concurrent_jobs": 10,
        "max_webhook_endpoints": 50,
        "sort_order": 1,
    },
    "enterprise": {
        "name": "Enterprise",
        "monthly_price_cents": 49900,
        "monthly_credits": 25_000,
        "requests_per_minute": 1000,
        "requests_per_day": 100_000,
        "output_retention_days": 90,
        "max_concurrent_jobs": 50,
        "max_webhook_endpoints": 500,
        "sort_order": 2,
    },
}

CREDIT_PACKS = [
    {"name": "Starter", "credits": 100, "price_cents": 500},
    {"name": "Creator", "credits": 500, "price_cents": 2000},
    {"name": "Studio", "credits": 2500, "price_cents": 8000},
]

from django import template

register = template.Library()

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


@register.filter
def money(amount, currency="usd"):
    """Integer minor units as a price: 2900, "usd" → "$29.00"."""
    if amount is None:
        return ""
    amount = int(amount)
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    currency = (currency or "usd").lower()
    symbol = SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{whole:,}.{cents:02d}"
    return f"{sign}{whole:,}.{cents:02d} {currency.upper()}"

from django.urls import path

from billing import auto_recharge_views, budget_views, views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("card/", views.card_setup, name="card-setup"),
    path("card/save/", views.replace_card, name="save-card"),
    path("packs/<int:pack_id>/buy/", views.buy_pack, name="buy-pack"),
    path("plan/", views.change_plan, name="change-plan"),
    path("auto-recharge/", auto_recharge_views.turn_on, name="auto-recharge"),
    path("auto-recharge/off/", auto_recharge_views.turn_off, name="auto-recharge-off"),
    path("portal/", views.customer_portal, name="portal"),
    path("invoices/", views.invoice_list, name="invoices"),
    path("invoices/<str:number>/", views.invoice_detail, name="invoice"),
    path("invoices/<str:number>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("ledger/", views.ledger, name="ledger"),
    path("budget/", budget_views.set_budget, name="budget"),
]

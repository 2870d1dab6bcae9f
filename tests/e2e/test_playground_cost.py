"""The playground's cost, in a real browser, as a person changes the choices."""

import shutil

import pytest

from generation import catalog
from generation.pricing import request_cost
from tests.accounts.factories import MembershipFactory
from tests.billing.factories import give_credits
from tests.e2e.conftest import log_in_as

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


@pytest.fixture
def playground(page, live_server, client):
    owner = MembershipFactory()
    give_credits(owner.organization, 20)
    log_in_as(page, live_server, client, owner.user)
    page.goto(f"{live_server.url}/playground/")
    return page


def _credits(n: int) -> str:
    return f"{n} credit" + ("" if n == 1 else "s")


@pytest.mark.parametrize(
    ("model_id", "size", "num_images"),
    [
        ("imagen-v2", "512x512", 1),
        ("imagen-v3", "1024x1024", 3),
        ("imagen-v3", "1536x1024", 2),
        ("imagen-artistic", "1024x1536", 4),
        ("imagen-fast", "768x1024", 4),
    ],
)
def test_the_cost_follows_the_choices_as_the_server_prices_them(
    playground, model_id, size, num_images
):
    playground.select_option("#id_model", model_id)
    playground.select_option("#id_size", size)
    playground.fill("#id_num_images", str(num_images))
    width, height = (int(side) for side in size.split("x"))
    cost = request_cost(
        model=catalog.get_model(model_id), num_images=num_images, width=width, height=height
    )
    assert playground.inner_text("#cost-credits") == _credits(cost)
    if cost <= 20:
        assert playground.inner_text("#balance-after") == _credits(20 - cost)
        assert playground.locator("#cost-short").is_hidden()
    else:
        assert playground.locator("#cost-short").is_visible()


def test_a_number_of_images_out_of_range_has_no_cost(playground):
    playground.fill("#id_num_images", "9")
    assert playground.inner_text("#cost-credits") == "—"
    assert "choose 1 to 4 images" in playground.inner_text("#cost-explained")

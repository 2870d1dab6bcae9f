import pytest

from generation import catalog


@pytest.fixture(autouse=True)
def _fresh_catalog():
    # The catalog is cached per process; each test's database starts from the seed.
    catalog.clear_local_cache()
    yield
    catalog.clear_local_cache()


# The generation tests' clock for django-ratelimit: the playground counts in the same windows.
from tests.generation.conftest import steady_window  # noqa: E402, F401

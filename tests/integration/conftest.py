import pytest

from generation import catalog


@pytest.fixture(autouse=True)
def _fresh_catalog():
    # The catalog is cached per process; each test's database starts from the seed.
    catalog.clear_local_cache()
    yield
    catalog.clear_local_cache()

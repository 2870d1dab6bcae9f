import base64
import io
import uuid
from datetime import timedelta

import factory
from django.utils import timezone
from PIL import Image

from generation import catalog
from generation.models import Job, JobImage
from tests.accounts.factories import OrganizationFactory, PlanFactory, api_key_for
from tests.billing.factories import give_credits


def customer(*, plan: str = "free", credits: int = 100, **org_fields):
    """An organization on `plan` with `credits`, and the secret of one of its keys."""
    organization = OrganizationFactory(plan=PlanFactory(slug=plan), **org_fields)
    if credits:
        give_credits(organization, credits)
    return organization, api_key_for(organization)


def headers(secret: str, **extra) -> dict:
    """Request headers for the test client: the key, plus e.g. prefer="respond-async"."""
    result = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    for name, value in extra.items():
        result["HTTP_" + name.upper().replace("-", "_")] = value
    return result


ASYNC = {"prefer": "respond-async"}


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (512, 384), color=(200, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def image_base64(fmt: str = "PNG", **kwargs) -> str:
    return base64.b64encode(image_bytes(fmt, **kwargs)).decode()


class JobFactory(factory.django.DjangoModelFactory):
    """A job row with one image row per image, paths empty until a test stores files.

    For reads; submissions go through the API (which writes image rows only with files).
    """

    class Meta:
        model = Job
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    dialect = Job.Dialect.V1
    mode = "text-to-image"
    model = factory.LazyFunction(lambda: catalog.default_model())
    prompt = factory.Sequence(lambda n: f"A lighthouse, take {n}")
    width = 1024
    height = 1024
    steps = 30
    guidance_scale = 7.5
    seed = 42
    num_images = 1
    credits_reserved = 1
    reservation_reference = factory.LazyFunction(lambda: f"job:{uuid.uuid4()}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    deadline_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=10))

    @factory.post_generation
    def with_images(obj, create, extracted, **kwargs):
        if create:
            JobImage.objects.bulk_create(
                JobImage(job=obj, index=i, width=obj.width, height=obj.height)
                for i in range(obj.num_images)
            )


def new_turn() -> str:
    """A turn's id, as a run_job message carries one (generation.scheduling)."""
    return str(uuid.uuid4())

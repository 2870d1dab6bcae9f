"""Submit one job in a dialect picked at random; retried with the same key when no answer
or a 503 came, as a careful client does."""

import base64
import io
import time

from PIL import Image

from ..context import call

SIZE = 256
STEPS = 4
# The same request can take several attempts while a process restarts or Redis is down.
ATTEMPTS = 3


def _input_image() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (SIZE, SIZE), (90, 140, 200)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


INPUT_IMAGE = _input_image()
V1 = {"width": SIZE, "height": SIZE, "steps": STEPS}


def job_webhook_url(ctx, tenant) -> str:
    return f"{ctx.receivers['healthy'].url}/jobs/{tenant.slug}"


def build(ctx, tenant, dialect: str, prompt: str, seed: int) -> tuple[str, dict, dict]:
    """The path, body and headers of a submission in `dialect`."""
    hook = job_webhook_url(ctx, tenant)
    if dialect == "sync":
        return "/v1/text-to-image", {"prompt": prompt, "seed": seed, **V1}, {"Prefer": "wait=20"}
    if dialect == "async":
        body = {"prompt": prompt, "seed": seed, "webhook_url": hook, **V1}
        return "/v1/text-to-image", body, {"Prefer": "respond-async"}
    if dialect == "v2":
        body = {
            "prompt": prompt,
            "model": "imagen-v2",
            "webhookUrl": hook,
            "parameters": {"seed": seed, **V1},
        }
        return "/v2/images/generate", body, {}
    if dialect == "openai":
        body = {"model": "imagen-v2", "prompt": prompt, "n": 1, "size": f"{SIZE}x{SIZE}"}
        return "/v1/images/generations", {**body, "seed": seed}, {}
    if dialect == "tasks_sync":
        return "/v1/tasks/sync", {"text_data": prompt, "options": {"num_images": 1}}, {}
    if dialect == "tasks_async":
        body = {"text_data": prompt, "options": {"num_images": 1}, "callback_url": hook}
        return "/v1/tasks/async", body, {}
    if dialect == "image_to_image":
        body = {"prompt": prompt, "seed": seed, "image": INPUT_IMAGE, "strength": 0.5, **V1}
        return "/v1/image-to-image", body, {"Prefer": "respond-async"}
    raise ValueError(dialect)


# Tasks render 1,024 x 1,024 (four times the credits and the time): picked less often.
DIALECTS = {
    "sync": 3,
    "async": 4,
    "v2": 3,
    "openai": 2,
    "tasks_sync": 1,
    "tasks_async": 1,
    "image_to_image": 2,
}


def submit(ctx, tenant, rng, dialect: str, action: str = "submit"):
    """Send one logical request (unique prompt and key) until it gets an answer other than
    503; return the last response (None if none came)."""
    number = ctx.next_number()
    prompt = f"soak request {number}: a lighthouse on a cliff at dawn"
    key = f"soak-{number}-{rng.getrandbits(32):08x}"
    path, body, headers = build(ctx, tenant, dialect, prompt, seed=rng.randrange(2**32))
    response = None
    for _ in range(ATTEMPTS):
        response = call(
            ctx,
            tenant,
            f"{action}:{dialect}",
            "POST",
            path,
            rng,
            json=body,
            headers=headers,
            submission=True,
            prompt=prompt,
            idempotency_key=key,
        )
        if response is not None and response.status_code not in (409, 503):
            return response
        ctx.record.count("client_retries")
        time.sleep(rng.uniform(0.5, 1.5))
    return response


def run(ctx, tenant, rng) -> None:
    dialects, weights = zip(*DIALECTS.items(), strict=True)
    submit(ctx, tenant, rng, rng.choices(dialects, weights)[0])

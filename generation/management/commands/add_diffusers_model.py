import json

from django.core.management.base import BaseCommand, CommandError

from generation import limits
from generation.diffusers_models import register_diffusers_model
from generation.engines import EngineError
from generation.engines import diffusers as diffusers_engine


class Command(BaseCommand):
    help = (
        "Add (or update) a catalog model run by the diffusers engine on the gpu workers, "
        "from a directory holding a pipeline saved with save_pretrained; refused when it "
        "does not load (checked on the CPU when this machine has no GPU)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", required=True, dest="model_id", help="The id customers send.")
        parser.add_argument("--path", required=True, help="The pipeline's directory.")
        parser.add_argument("--name")
        parser.add_argument("--credits-per-image", type=int)
        parser.add_argument("--device", choices=diffusers_engine.DEVICES)
        parser.add_argument("--dtype", choices=diffusers_engine.DTYPES)
        parser.add_argument(
            "--steps", type=int, help="The steps a request that names none gets (e.g. 4)."
        )
        parser.add_argument(
            "--guidance-scale", type=float, help="The guidance a request that names none gets."
        )

    def handle(self, *args, model_id, path, name, credits_per_image, device, dtype, **options):
        steps, guidance_scale = options["steps"], options["guidance_scale"]
        if credits_per_image is not None and credits_per_image < 1:
            raise CommandError("--credits-per-image must be at least 1")
        if steps is not None and not limits.STEPS_MIN <= steps <= limits.STEPS_MAX:
            raise CommandError(f"--steps must be {limits.STEPS_MIN}-{limits.STEPS_MAX}")
        if guidance_scale is not None and not (
            limits.GUIDANCE_MIN <= guidance_scale <= limits.GUIDANCE_MAX
        ):
            raise CommandError(
                f"--guidance-scale must be {limits.GUIDANCE_MIN}-{limits.GUIDANCE_MAX}"
            )
        try:
            entry, created = register_diffusers_model(
                model_id=model_id,
                path=path,
                name=name,
                credits_per_image=credits_per_image,
                device=device,
                dtype=dtype,
                steps=steps,
                guidance_scale=guidance_scale,
            )
        except EngineError as exc:
            raise CommandError(f"{path} was not added: {exc.message} (see the log above)") from None
        line = {
            "id": entry.id,
            "created": created,
            "engine_settings": entry.engine_settings,
            "capabilities": entry.capabilities,
            "credits_per_image": entry.credits_per_image,
        }
        self.stdout.write(json.dumps(line))

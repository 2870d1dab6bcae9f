import json

from django.core.management.base import BaseCommand, CommandError

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

    def handle(self, *args, model_id, path, name, credits_per_image, device, dtype, **options):
        if credits_per_image is not None and credits_per_image < 1:
            raise CommandError("--credits-per-image must be at least 1")
        try:
            entry, created = register_diffusers_model(
                model_id=model_id,
                path=path,
                name=name,
                credits_per_image=credits_per_image,
                device=device,
                dtype=dtype,
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

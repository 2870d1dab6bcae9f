from django import forms
from django.core.validators import MaxValueValidator
from django.template.defaultfilters import pluralize

from accounts.forms import PageForm
from generation import catalog, limits
from generation.models import Job
from generation.pricing import request_cost, started_megapixels

POSITIVE_INTEGER_MAX = 2_147_483_647
SIZES = ("512x512", "768x768", "1024x1024", "1024x768", "768x1024", "1536x1024", "1024x1536")


def _model_choices():
    return [(model.id, f"{model.name} ({model.id})") for model in catalog.enabled_models()]


class PlaygroundForm(PageForm):
    """What the playground asks for; the API's own serializer then validates it."""

    prompt = forms.CharField(
        label="Prompt",
        max_length=limits.PROMPT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    negative_prompt = forms.CharField(
        label="Negative prompt (optional)",
        max_length=limits.PROMPT_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    model = forms.ChoiceField(label="Model")
    size = forms.ChoiceField(
        label="Size (width by height)",
        choices=[(size, size.replace("x", " by ")) for size in SIZES],
        initial="1024x1024",
    )
    steps = forms.IntegerField(
        label="Steps",
        min_value=limits.STEPS_MIN,
        max_value=limits.STEPS_MAX,
        initial=limits.DEFAULT_STEPS,
    )
    guidance_scale = forms.FloatField(
        label="Guidance",
        min_value=limits.GUIDANCE_MIN,
        max_value=limits.GUIDANCE_MAX,
        initial=limits.DEFAULT_GUIDANCE,
        widget=forms.NumberInput(attrs={"step": "0.5"}),
    )
    seed = forms.IntegerField(
        label="Seed (optional)",
        min_value=0,
        max_value=limits.SEED_MAX,
        required=False,
        help_text="The same seed and parameters give the same image.",
    )
    style = forms.ChoiceField(
        label="Style",
        required=False,
        choices=[("", "None"), *((style, style.title()) for style in limits.STYLES)],
    )
    num_images = forms.IntegerField(
        label="Number of images", min_value=1, max_value=limits.NUM_IMAGES_MAX, initial=1
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = _model_choices()
        self.fields["model"].initial = catalog.default_model().id

    def prices(self) -> dict:
        """Every choice's cost, priced by generation.pricing: the page looks costs up.

        `costs[model][size][n - 1]` is the cost of n images; `credits_per_image` and
        `megapixels` (started, per image) are there to explain it.
        """
        sizes = {size: tuple(int(side) for side in size.split("x")) for size in SIZES}
        models = catalog.enabled_models()
        return {
            "credits_per_image": {model.id: model.credits_per_image for model in models},
            "megapixels": {
                size: started_megapixels(width=w, height=h) for size, (w, h) in sizes.items()
            },
            "costs": {
                model.id: {
                    size: [
                        request_cost(model=model, num_images=n, width=w, height=h)
                        for n in range(1, limits.NUM_IMAGES_MAX + 1)
                    ]
                    for size, (w, h) in sizes.items()
                }
                for model in models
            },
        }

    def current_cost(self) -> int | None:
        """The cost of the choices the form shows, or None while they are not a valid request."""
        try:
            num_images = int(self["num_images"].value())
            costs = self.prices()["costs"][self["model"].value()][self["size"].value()]
        except (KeyError, TypeError, ValueError):
            return None
        return costs[num_images - 1] if 1 <= num_images <= len(costs) else None

    def api_body(self) -> dict:
        """The request body of the equivalent POST /v1/text-to-image."""
        data = self.cleaned_data
        width, height = (int(side) for side in data["size"].split("x"))
        body = {
            "prompt": data["prompt"],
            "model": data["model"],
            "width": width,
            "height": height,
            "steps": data["steps"],
            "guidance_scale": data["guidance_scale"],
            "num_images": data["num_images"],
        }
        if data["negative_prompt"]:
            body["negative_prompt"] = data["negative_prompt"]
        if data["seed"] is not None:
            body["seed"] = data["seed"]
        if data["style"]:
            body["style"] = data["style"]
        return body


class JobFilterForm(PageForm):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *Job.Status.choices]
    )
    model = forms.ChoiceField(label="Model", required=False)
    created_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "Any model"), *_model_choices()]


class SettingsForm(PageForm):
    name = forms.CharField(label="Organization name", max_length=120)
    billing_email = forms.EmailField(
        label="Billing email",
        required=False,
        help_text="Invoices and payment notices go here; empty means the owners.",
    )
    low_credit_threshold = forms.IntegerField(
        label="Low-credit threshold",
        min_value=0,
        # The column is a PositiveIntegerField: PostgreSQL's integer holds no more.
        max_value=POSITIVE_INTEGER_MAX,
        help_text="We warn you when your balance falls below this many credits.",
    )
    output_retention_days = forms.IntegerField(label="Output retention (days)", min_value=1)

    def __init__(self, *args, maximum_retention: int, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["output_retention_days"]
        field.widget.attrs["max"] = maximum_retention
        field.validators.append(
            MaxValueValidator(
                maximum_retention,
                message=(
                    f"Your plan keeps images for at most {maximum_retention} "
                    f"day{pluralize(maximum_retention)}."
                ),
            )
        )
        field.help_text = (
            f"How long generated images are kept: at most {maximum_retention} "
            f"day{pluralize(maximum_retention)} on your plan."
        )

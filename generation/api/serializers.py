"""Each dialect's input (parsed into one GenerationRequest) and output (rendered from a Job)."""

import re
from datetime import date

from django.core.validators import MinValueValidator
from rest_framework import serializers

from common.api.errors import field_errors
from common.errors import InvalidRequest
from common.fastpaths.drf import RequestSerializer
from generation import limits, pricing
from generation.api import fields
from generation.engines.base import Mode
from generation.images import InvalidImage, fit_to_limits
from generation.masks import check_mask
from generation.models import Job
from generation.moderation.safety import SafetySetting
from generation.output_formats import WITH_ALPHA, Background, OutputFormat
from generation.payloads import V2_STATUS, JobSerializer
from generation.requests import GenerationRequest

Dialect = Job.Dialect
FINISH_EVENTS = ("job.completed", "job.failed")


def _finish_events(url: str | None) -> tuple[str, ...]:
    return FINISH_EVENTS if url else ()


def _output(data: dict) -> dict:
    """The GenerationRequest's output fields from a body's (or its options') fields."""
    return {
        "output_format": data.get("output_format") or OutputFormat.PNG,
        "output_compression": data.get("output_compression"),
    }


# The fields whose errors alone make a submission's message "Invalid image dimensions".
DIMENSIONS = frozenset({"width", "height", "size", "parameters.width", "parameters.height"})


class SubmissionSerializer(RequestSerializer):
    """A submission's body: validated by generation.submission.submit, after its rate limit."""

    dialect: str  # the API dialect it comes in, known before the body is valid
    # Whether the answer is a stream of server-sent events (OpenAI's `stream`).
    streams = False

    def generation_request(self) -> GenerationRequest:
        """The body as a GenerationRequest, or raise InvalidRequest with each field's messages."""
        if not self.is_valid():
            fields = field_errors(self.errors)
            message = "Invalid image dimensions" if set(fields) <= DIMENSIONS else None
            raise InvalidRequest(fields, message=message)
        return self.to_generation_request()


# --- v1: text to image, image to image, variations -------------------------------------


class TextToImageRequestSerializer(SubmissionSerializer):
    prompt = fields.prompt_field()
    model = fields.model_field()
    width = fields.side_field(default=limits.DEFAULT_SIDE)
    height = fields.side_field(default=limits.DEFAULT_SIDE)
    steps = fields.steps_field()
    guidance_scale = fields.guidance_scale_field()
    negative_prompt = fields.negative_prompt_field()
    seed = fields.seed_field()
    num_images = fields.num_images_field()
    style = fields.style_field()
    safety_setting = fields.safety_setting_field()
    output_format = fields.output_format_field()
    output_compression = fields.output_compression_field()
    webhook_url = fields.WebhookUrlField()
    webhook_secret = fields.WebhookSecretField()

    dialect = Dialect.V1
    mode = Mode.TEXT_TO_IMAGE

    def to_generation_request(self) -> GenerationRequest:
        data = self.validated_data
        return GenerationRequest(
            dialect=self.dialect,
            mode=self.mode,
            model=data.get("model"),
            prompt=data.get("prompt", ""),
            negative_prompt=data.get("negative_prompt") or "",
            width=data["width"],
            height=data["height"],
            steps=data.get("steps"),
            guidance_scale=data.get("guidance_scale"),
            seed=data.get("seed"),
            style=data.get("style") or "",
            num_images=data["num_images"],
            strength=data.get("strength"),
            input_image=data.get("image"),
            webhook_url=data.get("webhook_url") or "",
            webhook_secret=data.get("webhook_secret") or "",
            webhook_events=_finish_events(data.get("webhook_url")),
            safety_setting=data.get("safety_setting") or SafetySetting.BLOCK_MEDIUM_AND_ABOVE,
            **_output(data),
        )


class _SizedByInputImage:
    """Width and height default to the input image's size, fitted to the limits."""

    def validate(self, attrs):
        image = attrs.get("image")
        if image is not None:
            width, height = fit_to_limits(image.width, image.height)
            attrs.setdefault("width", width)
            attrs.setdefault("height", height)
        return attrs


class ImageToImageRequestSerializer(_SizedByInputImage, TextToImageRequestSerializer):
    width = fields.side_field(help_text="Defaults to the input image's width, fitted.")
    height = fields.side_field(help_text="Defaults to the input image's height, fitted.")
    image = fields.InputImageField()
    strength = fields.strength_field()

    mode = Mode.IMAGE_TO_IMAGE


class VariationsRequestSerializer(_SizedByInputImage, SubmissionSerializer):
    image = fields.InputImageField()
    model = fields.model_field()
    num_images = fields.num_images_field()
    seed = fields.seed_field()
    width = fields.side_field(help_text="Defaults to the input image's width, fitted.")
    height = fields.side_field(help_text="Defaults to the input image's height, fitted.")
    output_format = fields.output_format_field()
    output_compression = fields.output_compression_field()
    webhook_url = fields.WebhookUrlField()
    webhook_secret = fields.WebhookSecretField()

    dialect = Dialect.V1
    mode = Mode.VARIATIONS
    to_generation_request = TextToImageRequestSerializer.to_generation_request


# --- v2: the unified async endpoint ----------------------------------------------------

V2_EVENTS = {"progress": "job.progress", "completed": "job.completed", "failed": "job.failed"}


class V2ParametersSerializer(_SizedByInputImage, RequestSerializer):
    width = fields.side_field()
    height = fields.side_field()
    steps = fields.steps_field()
    guidance_scale = fields.guidance_scale_field()
    negative_prompt = fields.negative_prompt_field()
    seed = fields.seed_field()
    num_images = fields.num_images_field()
    style = fields.style_field()
    image = fields.InputImageField(required=False, help_text="Makes it image to image.")
    strength = fields.strength_field()
    safety_setting = fields.safety_setting_field()
    output_format = fields.output_format_field()
    output_compression = fields.output_compression_field()


class V2GenerateRequestSerializer(SubmissionSerializer):
    dialect = Dialect.V2

    prompt = fields.prompt_field()
    model = fields.model_field(required=True)
    webhookUrl = fields.WebhookUrlField()
    webhookEvents = serializers.ListField(
        child=serializers.ChoiceField(
            choices=list(V2_EVENTS),
            error_messages={"invalid_choice": "Must be progress, completed or failed."},
        ),
        required=False,
        allow_empty=False,
        help_text="Defaults to all three.",
    )
    parameters = V2ParametersSerializer(required=False)

    def to_generation_request(self) -> GenerationRequest:
        data = self.validated_data
        params = dict(data.get("parameters") or {})
        params.setdefault("width", limits.DEFAULT_SIDE)
        params.setdefault("height", limits.DEFAULT_SIDE)
        params.setdefault("num_images", 1)
        image = params.get("image")
        url = data.get("webhookUrl") or ""
        events = data.get("webhookEvents") or list(V2_EVENTS)
        return GenerationRequest(
            dialect=self.dialect,
            mode=Mode.IMAGE_TO_IMAGE if image else Mode.TEXT_TO_IMAGE,
            model=data["model"],
            prompt=data["prompt"],
            negative_prompt=params.get("negative_prompt") or "",
            width=params["width"],
            height=params["height"],
            steps=params.get("steps"),
            guidance_scale=params.get("guidance_scale"),
            seed=params.get("seed"),
            style=params.get("style") or "",
            num_images=params["num_images"],
            strength=params.get("strength") if image else None,
            input_image=image,
            webhook_url=url,
            webhook_events=tuple(dict.fromkeys(V2_EVENTS[e] for e in events)) if url else (),
            safety_setting=params.get("safety_setting") or SafetySetting.BLOCK_MEDIUM_AND_ABOVE,
            **_output(params),
        )


# --- OpenAI-compatible -----------------------------------------------------------------

ASPECT_RATIOS = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "4:3": (1152, 864),
    "3:4": (864, 1152),
}


# ASCII digits only (str.isdigit also accepts "²", which int() refuses), and few enough
# that int() is cheap: longer numbers are far outside the limits anyway.
_SIZE = re.compile(r"([0-9]{1,6})[xX]([0-9]{1,6})")


class OpenAIImageRequestSerializer(SubmissionSerializer):
    dialect = Dialect.OPENAI

    model = fields.model_field()
    prompt = fields.prompt_field()
    n = fields.num_images_field(required=False, default=None, allow_null=True)
    num_images = fields.num_images_field(required=False, default=None, allow_null=True)
    size = serializers.CharField(
        required=False, allow_null=True, help_text='"WxH" within 256-2048, or "auto".'
    )
    aspect_ratio = serializers.ChoiceField(
        choices=list(ASPECT_RATIOS),
        required=False,
        allow_null=True,
        error_messages={"invalid_choice": f"Must be one of: {', '.join(ASPECT_RATIOS)}."},
    )
    response_format = serializers.ChoiceField(
        choices=["url", "b64_json"], required=False, allow_null=True
    )
    convert_base64_to_url = serializers.BooleanField(required=False, allow_null=True)
    seed = fields.seed_field()
    negative_prompt = fields.negative_prompt_field()
    style = fields.style_field()
    # Overrides `moderation` when both are sent.
    safety_setting = fields.safety_setting_field()
    quality = fields.quality_field()
    output_format = fields.output_format_field()
    output_compression = fields.output_compression_field()
    background = fields.background_field()
    moderation = fields.moderation_field()
    user = fields.end_user_field("Who the request is for, kept on the job for staff.")
    safety_identifier = fields.end_user_field(
        "A stable id of the end user (a hash), kept on the job for staff; `user` when absent."
    )
    stream = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=False,
        help_text="Answer with server-sent events (text/event-stream) as the image renders.",
    )
    partial_images = fields.partial_images_field()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        transparent = attrs.get("background") == Background.TRANSPARENT
        if transparent and (attrs.get("output_format") or OutputFormat.PNG) not in WITH_ALPHA:
            raise serializers.ValidationError(
                {"background": ["A transparent background needs output_format png or webp."]}
            )
        return attrs

    @property
    def streams(self) -> bool:
        return bool(self.validated_data.get("stream"))

    def validate_size(self, value):
        if value is None or value == "auto":
            return None
        match = _SIZE.fullmatch(value)
        if match is None:
            raise serializers.ValidationError('Must be "WIDTHxHEIGHT", e.g. "1024x1024".')
        width, height = match.groups()
        for side in (int(width), int(height)):
            try:
                fields.check_side(side)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError(
                    f"Width and height: {' '.join(exc.detail)}"
                ) from None
        return int(width), int(height)

    @property
    def wants_base64(self) -> bool:
        data = self.validated_data
        if data.get("response_format"):
            return data["response_format"] == "b64_json"
        return data.get("convert_base64_to_url") is False

    def to_generation_request(self) -> GenerationRequest:
        return GenerationRequest(**self.request_fields(self.validated_data))

    def request_fields(self, data: dict) -> dict:
        """The GenerationRequest's fields from the validated body."""
        width, height = data.get("size") or ASPECT_RATIOS[data.get("aspect_ratio") or "1:1"]
        return dict(
            dialect=self.dialect,
            model=data.get("model"),
            prompt=data["prompt"],
            negative_prompt=data.get("negative_prompt") or "",
            width=width,
            height=height,
            seed=data.get("seed"),
            style=data.get("style") or "",
            num_images=data.get("n") or data.get("num_images") or 1,
            safety_setting=data.get("safety_setting")
            or fields.MODERATION[data.get("moderation") or "auto"],
            quality=data.get("quality") or "auto",
            background=(
                Background.TRANSPARENT
                if data.get("background") == Background.TRANSPARENT
                else Background.OPAQUE
            ),
            partial_images=(data.get("partial_images") or 0) if data.get("stream") else 0,
            end_user=data.get("user") or "",
            safety_identifier=data.get("safety_identifier") or data.get("user") or "",
            **_output(data),
        )


# OpenAI's input_fidelity as the strength of the edit: how far it may move from the input.
INPUT_FIDELITY_STRENGTH = {"low": limits.DEFAULT_STRENGTH, "high": 0.5}


class OpenAIImageEditRequestSerializer(OpenAIImageRequestSerializer):
    image = fields.InputImagesField(
        required=False,
        help_text="The image to edit, then up to 15 references (`image[]` for several).",
    )
    images = fields.ImageUrlsField(required=False, help_text="JSON only, instead of `image`.")
    mask = fields.MaskField(required=False, help_text="PNG with alpha, the first image's size.")
    input_fidelity = serializers.ChoiceField(
        choices=list(INPUT_FIDELITY_STRENGTH),
        required=False,
        allow_null=True,
        error_messages={"invalid_choice": "Must be one of: low, high."},
        help_text="`high` keeps more of the input (strength 0.5), `low` less (0.75; default).",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "image" in attrs and "images" in attrs:
            raise serializers.ValidationError({"images": ["Send `image` or `images`, not both."]})
        images = attrs.get("image") or attrs.get("images")
        if not images:
            raise serializers.ValidationError({"image": ["This field is required."]})
        attrs["inputs"] = images
        mask = attrs.get("mask")
        if mask is not None:
            try:
                check_mask(mask, width=images[0].width, height=images[0].height)
            except InvalidImage as exc:
                raise serializers.ValidationError({"mask": [str(exc)]}) from None
        return attrs

    def request_fields(self, data: dict) -> dict:
        first, *references = data["inputs"]
        request = super().request_fields(data)
        if not data.get("size") and not data.get("aspect_ratio"):
            request["width"], request["height"] = fit_to_limits(first.width, first.height)
        return request | {
            "mode": Mode.IMAGE_TO_IMAGE,
            "input_image": first,
            "reference_images": tuple(references),
            "mask": data.get("mask"),
            "strength": INPUT_FIDELITY_STRENGTH[data.get("input_fidelity") or "low"],
            # The edited picture keeps its input's backdrop (docs/api/images.md).
            "background": Background.OPAQUE,
        }


class OpenAIImageVariationRequestSerializer(SubmissionSerializer):
    dialect = Dialect.OPENAI

    image = fields.InputImageField()
    model = fields.model_field()
    n = fields.num_images_field(required=False, default=None, allow_null=True)
    size = serializers.CharField(
        required=False,
        allow_null=True,
        help_text='"WxH" within 256-2048, or "auto" (the input\'s size, fitted).',
    )
    response_format = serializers.ChoiceField(
        choices=["url", "b64_json"], required=False, allow_null=True
    )
    seed = fields.seed_field()
    output_format = fields.output_format_field()
    output_compression = fields.output_compression_field()
    user = fields.end_user_field("Who the request is for, kept on the job for staff.")

    validate_size = OpenAIImageRequestSerializer.validate_size
    wants_base64 = OpenAIImageRequestSerializer.wants_base64

    def to_generation_request(self) -> GenerationRequest:
        data = self.validated_data
        image = data["image"]
        width, height = data.get("size") or fit_to_limits(image.width, image.height)
        return GenerationRequest(
            dialect=self.dialect,
            mode=Mode.VARIATIONS,
            model=data.get("model"),
            width=width,
            height=height,
            seed=data.get("seed"),
            num_images=data.get("n") or 1,
            input_image=image,
            end_user=data.get("user") or "",
            safety_identifier=data.get("user") or "",
            **_output(data),
        )


# --- Task endpoints (seed 002) ---------------------------------------------------------


class TaskOptionsSerializer(RequestSerializer):
    neg_text = fields.negative_prompt_field()
    num_images = fields.num_images_field(maximum=limits.TASKS_NUM_IMAGES_MAX)
    output_format = fields.output_format_field()
    output_compression = fields.output_compression_field()


class TaskRequestSerializer(SubmissionSerializer):
    dialect = Dialect.TASKS

    text_data = fields.prompt_field()
    options = TaskOptionsSerializer(required=False)
    callback_url = fields.WebhookUrlField()
    webhook_secret = fields.WebhookSecretField()

    def to_generation_request(self) -> GenerationRequest:
        data = self.validated_data
        options = data.get("options") or {}
        url = data.get("callback_url") or ""
        return GenerationRequest(
            dialect=self.dialect,
            prompt=data["text_data"],
            negative_prompt=options.get("neg_text") or "",
            num_images=options.get("num_images", 1),
            webhook_url=url,
            webhook_secret=data.get("webhook_secret") or "",
            webhook_events=_finish_events(url),
            **_output(options),
        )


# --- Output ---


class ApiErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.CharField(allow_null=True)
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Only for invalid_parameters: each field and its messages.",
    )


class ApiErrorSerializer(serializers.Serializer):
    error = ApiErrorBodySerializer()


# A job itself renders from generation.payloads, as its webhook events do.


class JobListSerializer(serializers.Serializer):
    data = JobSerializer(many=True, source="jobs")
    next_cursor = serializers.CharField(allow_null=True)


class JobListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["processing", "completed", "failed", "canceled"], required=False
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=limits.LIST_LIMIT_MAX,
        default=limits.DEFAULT_LIST_LIMIT,
        error_messages={
            "min_value": f"Must be between 1 and {limits.LIST_LIMIT_MAX}.",
            "max_value": f"Must be between 1 and {limits.LIST_LIMIT_MAX}.",
            "invalid": "Must be an integer.",
        },
    )
    cursor = serializers.CharField(required=False)


class V2SubmittedSerializer(serializers.Serializer):
    jobId = serializers.UUIDField(source="pk")
    status = serializers.SerializerMethodField()

    def get_status(self, job) -> str:
        return V2_STATUS[job.status]


class OpenAIImageSerializer(serializers.Serializer):
    url = serializers.CharField(required=False)
    b64_json = serializers.CharField(required=False)


class OpenAIUsageSerializer(serializers.Serializer):
    credits_used = serializers.IntegerField()


class OpenAIMetaSerializer(serializers.Serializer):
    usage = OpenAIUsageSerializer()


class OpenAIImagesResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    data = OpenAIImageSerializer(many=True)
    output_format = serializers.ChoiceField(choices=OutputFormat.choices)
    size = serializers.CharField(help_text='"WIDTHxHEIGHT".')
    quality = serializers.ChoiceField(choices=["low", "medium", "high"])
    background = serializers.ChoiceField(choices=["opaque", "transparent"])
    meta = OpenAIMetaSerializer()


class ModelPricingSerializer(serializers.Serializer):
    credits_per_image = serializers.IntegerField()
    megapixel = serializers.SerializerMethodField(help_text="Pixels in one megapixel.")
    formula = serializers.SerializerMethodField(help_text="A request's cost in credits.")

    def get_megapixel(self, model) -> int:
        return limits.MEGAPIXEL

    def get_formula(self, model) -> str:
        return pricing.FORMULA


class ModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    credits_per_image = serializers.IntegerField()
    pricing = ModelPricingSerializer(source="*")
    capabilities = serializers.ListField(child=serializers.CharField())
    default = serializers.BooleanField(source="is_default")


class ModelListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = ModelSerializer(many=True)


# Days before it hold no usage, and the default `from` (29 days before `to`) of a `to` in
# year 1 would fall off the calendar.
USAGE_FIRST_DAY = date(1970, 1, 1)


def _usage_day_field(help_text: str) -> serializers.DateField:
    return serializers.DateField(
        required=False,
        help_text=help_text,
        validators=[
            MinValueValidator(
                USAGE_FIRST_DAY, message=f"Must be on or after {USAGE_FIRST_DAY.isoformat()}."
            )
        ],
    )


class UsageQuerySerializer(serializers.Serializer):
    to = _usage_day_field("YYYY-MM-DD, default today (UTC).")
    api_key = serializers.CharField(
        required=False,
        max_length=64,
        help_text="The id of one of your API keys (the 8 characters after `sk_live_`, as the "
        "API keys page shows them): that key's usage only. Default: the whole organization.",
    )

    def get_fields(self):
        # `from` is a Python keyword, so it is added by name.
        result = super().get_fields()
        result["from"] = _usage_day_field("YYYY-MM-DD, default 29 days before `to`.")
        return result


class UsageDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    requests = serializers.IntegerField()
    images = serializers.IntegerField()
    credits_used = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    data = UsageDaySerializer(many=True)

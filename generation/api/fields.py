"""The request fields every dialect shares, built from generation.limits.

Each dialect's serializer is assembled from these factories (renaming a field where its
dialect does), so a bound, a default or a message is stated once.
"""

import base64
import binascii
from urllib.parse import urlsplit

from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common import outbound
from generation import limits, output_formats
from generation.images import (
    InputImage,
    InvalidImage,
    decode_base64_image,
    fetch_image,
    is_image_url,
    read_image,
)
from generation.moderation.safety import SafetySetting
from generation.output_formats import Background, OutputFormat
from generation.quality import Quality

# OpenAI's limit on a stream's previews.
PARTIAL_IMAGES_MAX = 3


def _between(low, high) -> dict:
    message = f"Must be between {low} and {high}."
    return {"min_value": message, "max_value": message}


def prompt_field(**kwargs) -> serializers.CharField:
    # DRF's CharField refuses NUL and lone surrogates (400 invalid_parameters): PostgreSQL
    # text cannot hold them. Emoji, right-to-left text, tabs and newlines are kept as sent.
    kwargs.setdefault("required", True)
    return serializers.CharField(
        max_length=limits.PROMPT_MAX_LENGTH,
        error_messages={
            "max_length": f"Must be at most {limits.PROMPT_MAX_LENGTH} characters.",
            "blank": "Must not be empty.",
            "required": "This field is required.",
        },
        **kwargs,
    )


def negative_prompt_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(
        max_length=limits.PROMPT_MAX_LENGTH,
        required=False,
        allow_blank=True,
        allow_null=True,
        default="",
        error_messages={"max_length": f"Must be at most {limits.PROMPT_MAX_LENGTH} characters."},
        **kwargs,
    )


def model_field(**kwargs) -> serializers.CharField:
    kwargs.setdefault("required", False)
    if not kwargs["required"]:
        kwargs.setdefault("allow_null", True)
    return serializers.CharField(
        max_length=64, help_text="A model id from GET /v1/models.", **kwargs
    )


def _multiple_of_8(value: int) -> None:
    if value % limits.SIDE_MULTIPLE:
        raise serializers.ValidationError(f"Must be a multiple of {limits.SIDE_MULTIPLE}.")


@extend_schema_field(
    {
        "type": "integer",
        "minimum": limits.SIDE_MIN,
        "maximum": limits.SIDE_MAX,
        "multipleOf": limits.SIDE_MULTIPLE,
    }
)
class SideField(serializers.IntegerField):
    """A width or height: 256-2,048 pixels in multiples of 8."""


def side_field(**kwargs) -> serializers.IntegerField:
    return SideField(
        min_value=limits.SIDE_MIN,
        max_value=limits.SIDE_MAX,
        required=False,
        validators=[_multiple_of_8],
        error_messages=_between(limits.SIDE_MIN, limits.SIDE_MAX),
        **kwargs,
    )


def check_side(value: int) -> None:
    """Apply side_field's rules to a number parsed from elsewhere (OpenAI's `size`)."""
    side_field().run_validation(value)


def steps_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=limits.STEPS_MIN,
        max_value=limits.STEPS_MAX,
        required=False,
        help_text=f"Default: the model's own, else {limits.DEFAULT_STEPS}.",
        error_messages=_between(limits.STEPS_MIN, limits.STEPS_MAX),
    )


def guidance_scale_field() -> serializers.FloatField:
    return serializers.FloatField(
        min_value=limits.GUIDANCE_MIN,
        max_value=limits.GUIDANCE_MAX,
        required=False,
        help_text=f"Default: the model's own, else {limits.DEFAULT_GUIDANCE}.",
        error_messages=_between(limits.GUIDANCE_MIN, limits.GUIDANCE_MAX),
    )


def seed_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0,
        max_value=limits.SEED_MAX,
        required=False,
        allow_null=True,
        help_text="Chosen at random when absent, and returned.",
        error_messages=_between(0, limits.SEED_MAX),
    )


def num_images_field(maximum: int = limits.NUM_IMAGES_MAX, **kwargs) -> serializers.IntegerField:
    kwargs.setdefault("default", 1)
    return serializers.IntegerField(
        min_value=1, max_value=maximum, error_messages=_between(1, maximum), **kwargs
    )


def style_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=limits.STYLES,
        required=False,
        allow_null=True,
        allow_blank=True,
        error_messages={"invalid_choice": f"Must be one of: {', '.join(limits.STYLES)}."},
    )


def strength_field() -> serializers.FloatField:
    return serializers.FloatField(
        min_value=limits.STRENGTH_MIN,
        max_value=limits.STRENGTH_MAX,
        default=limits.DEFAULT_STRENGTH,
        error_messages=_between(limits.STRENGTH_MIN, limits.STRENGTH_MAX),
    )


class WebhookUrlField(serializers.URLField):
    """An http(s) URL that will receive this job's events."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(max_length=2000, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if urlsplit(value).scheme not in ("http", "https"):
            raise serializers.ValidationError("Must be an http or https URL.")
        try:
            outbound.validate_public_url(value)
        except outbound.UnsafeUrl as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


class WebhookSecretField(serializers.CharField):
    """`whsec_` followed by the base64 of 24 to 64 random bytes."""

    PREFIX = "whsec_"

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(max_length=120, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value:
            return value
        message = "Must be 'whsec_' followed by the base64 of 24 to 64 bytes."
        if not value.startswith(self.PREFIX):
            raise serializers.ValidationError(message)
        try:
            secret = base64.b64decode(value[len(self.PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError(message) from None
        if not 24 <= len(secret) <= 64:
            raise serializers.ValidationError(message)
        return value


def read_input_image(data) -> InputImage:
    """An input image from a multipart file, base64, a `data:` URL or an http(s) URL; raise
    InvalidImage saying what is wrong with it."""
    if isinstance(data, UploadedFile):
        if data.size > limits.INPUT_IMAGE_MAX_BYTES:
            raise InvalidImage(
                f"The image must be at most {limits.INPUT_IMAGE_MAX_BYTES // (1024 * 1024)} MB."
            )
        return read_image(data.read())
    if isinstance(data, str):
        if is_image_url(data):
            return fetch_image(data)
        return read_image(decode_base64_image(data))
    raise InvalidImage("Send the image as base64, a data: URL, an http(s) URL or a multipart file.")


@extend_schema_field(OpenApiTypes.BINARY)
class InputImageField(serializers.Field):
    """An image as raw base64, a `data:` URL, an http(s) URL or a multipart file: PNG, JPEG
    or WebP, ≤ 10 MB."""

    def to_internal_value(self, data):
        try:
            return read_input_image(data)
        except InvalidImage as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        raise NotImplementedError("Input images are never rendered")


@extend_schema_field({"type": "array", "items": {"type": "string", "format": "binary"}})
class InputImagesField(InputImageField):
    """OpenAI's edit `image`: one image, or several (`image[]` in a multipart form, a list in
    JSON), at most limits.EDIT_IMAGES_MAX; the first is the one edited."""

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):
            # The SDK sends one file as `image` and several as `image[]`.
            values = dictionary.getlist(self.field_name) + dictionary.getlist(
                f"{self.field_name}[]"
            )
            return values or serializers.empty
        return dictionary.get(self.field_name, serializers.empty)

    def to_internal_value(self, data):
        values = data if isinstance(data, list) else [data]
        return images_from(values)


def images_from(values: list) -> tuple[InputImage, ...]:
    """Each of `values` as an input image; one message per image that is not usable."""
    if not values:
        raise serializers.ValidationError("Send at least one image.")
    if len(values) > limits.EDIT_IMAGES_MAX:
        raise serializers.ValidationError(f"At most {limits.EDIT_IMAGES_MAX} images.")
    images, problems = [], []
    for number, value in enumerate(values, start=1):
        try:
            images.append(read_input_image(value))
        except InvalidImage as exc:
            problems.append(f"Image {number}: {exc}" if len(values) > 1 else str(exc))
    if problems:
        raise serializers.ValidationError(problems)
    return tuple(images)


def _image_url(item) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("image_url"), str):
        raise serializers.ValidationError(
            'Each must be {"image_url": "<an http(s) or data: URL>"}.'
        )
    return item["image_url"]


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"image_url": {"type": "string"}},
            "required": ["image_url"],
        },
    }
)
class ImageUrlsField(serializers.Field):
    """OpenAI's JSON edit `images`: a list of {"image_url": ...}, each an http(s) or data:
    URL; the first is the one edited."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError('Must be a list of {"image_url": ...} objects.')
        return images_from([_image_url(item) for item in data])

    def to_representation(self, value):
        raise NotImplementedError("Input images are never rendered")


@extend_schema_field(OpenApiTypes.BINARY)
class MaskField(InputImageField):
    """An edit's mask: a multipart file, or in JSON {"image_url": ...} (base64 and URLs too)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = _image_url(data)
        return super().to_internal_value(data)


def safety_setting_field(**kwargs) -> serializers.ChoiceField:
    """How strict image moderation is (seed 004); the default when absent or null."""
    names = ", ".join(SafetySetting.values)
    return serializers.ChoiceField(
        choices=SafetySetting.choices,
        required=False,
        allow_null=True,
        error_messages={"invalid_choice": f"Must be one of: {names}."},
        help_text=f"One of {names}. Default: {SafetySetting.BLOCK_MEDIUM_AND_ABOVE.value}.",
        **kwargs,
    )


def _choice_field(choices, *, default, help_text: str, **kwargs) -> serializers.ChoiceField:
    """A choice the request may leave out or send as null (then `default`)."""
    values = [value for value, _ in choices]
    return serializers.ChoiceField(
        choices=choices,
        required=False,
        allow_null=True,
        default=default,
        error_messages={"invalid_choice": f"Must be one of: {', '.join(values)}."},
        help_text=f"{help_text} One of {', '.join(values)}; default {default}.",
        **kwargs,
    )


def output_format_field() -> serializers.ChoiceField:
    return _choice_field(
        OutputFormat.choices,
        default=OutputFormat.PNG.value,
        help_text="The format the images are stored and served in.",
    )


def output_compression_field() -> serializers.IntegerField:
    low, high = output_formats.COMPRESSION_MIN, output_formats.COMPRESSION_MAX
    return serializers.IntegerField(
        min_value=low,
        max_value=high,
        required=False,
        allow_null=True,
        error_messages=_between(low, high),
        help_text="JPEG and WebP quality, 0-100 (100 when absent); a PNG ignores it.",
    )


def background_field() -> serializers.ChoiceField:
    return _choice_field(
        Background.choices,
        default=Background.AUTO.value,
        help_text="`transparent` leaves the backdrop out (alpha 0); it needs png or webp.",
    )


def quality_field() -> serializers.ChoiceField:
    return _choice_field(
        Quality.choices,
        default=Quality.AUTO.value,
        help_text="Sets the steps the model runs (docs/api/images.md).",
    )


# OpenAI's `moderation`, as the safety setting it stands for.
MODERATION = {"auto": SafetySetting.BLOCK_MEDIUM_AND_ABOVE, "low": SafetySetting.BLOCK_ONLY_HIGH}


def moderation_field() -> serializers.ChoiceField:
    return _choice_field(
        [(name, name) for name in MODERATION],
        default="auto",
        help_text="`auto` is the default safety setting, `low` is block_only_high.",
    )


def partial_images_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0,
        max_value=PARTIAL_IMAGES_MAX,
        required=False,
        allow_null=True,
        default=0,
        error_messages=_between(0, PARTIAL_IMAGES_MAX),
        help_text="Previews sent before each image when streaming (0-3).",
    )


def end_user_field(help_text: str) -> serializers.CharField:
    return serializers.CharField(
        max_length=256,
        required=False,
        allow_blank=True,
        allow_null=True,
        error_messages={"max_length": "Must be at most 256 characters."},
        help_text=help_text,
    )

"""The bounds and defaults of a generation request (docs/api), stated once for every dialect."""

PROMPT_MAX_LENGTH = 2000
SIDE_MIN = 256
SIDE_MAX = 2048
SIDE_MULTIPLE = 8
DEFAULT_SIDE = 1024
STEPS_MIN, STEPS_MAX, DEFAULT_STEPS = 1, 100, 30
GUIDANCE_MIN, GUIDANCE_MAX, DEFAULT_GUIDANCE = 1.0, 20.0, 7.5
SEED_MAX = 2**32 - 1
NUM_IMAGES_MAX = 4
# Seed 002's task endpoints allow up to six images per call.
TASKS_NUM_IMAGES_MAX = 6
STRENGTH_MIN, STRENGTH_MAX, DEFAULT_STRENGTH = 0.0, 1.0, 0.75
INPUT_IMAGE_MAX_BYTES = 10 * 1024 * 1024
INPUT_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
# 16 megapixels (4,096 x 4,096): twice the largest output side. Decoding costs memory by
# the pixel, whatever the file's size (a 140 KB PNG can claim 144 megapixels), so
# submission and the worker both refuse more, from the header, before decoding.
INPUT_IMAGE_MAX_PIXELS = 4096 * 4096
STYLES = ("realistic", "artistic", "anime", "fantasy", "cyberpunk", "vintage")
# One credit buys up to one megapixel (1,048,576 pixels) per image.
MEGAPIXEL = 1_048_576
WAIT_MIN_SECONDS, WAIT_MAX_SECONDS = 1, 60
LIST_LIMIT_MAX, DEFAULT_LIST_LIMIT = 100, 20
# OpenAI's edits take up to 16 images (references beside the first).
EDIT_IMAGES_MAX = 16
# An input image given by URL: one deadline for the whole fetch, and the redirects followed
# (each one's address vetted again by common.outbound).
INPUT_IMAGE_FETCH_SECONDS = 10.0
INPUT_IMAGE_REDIRECTS_MAX = 3

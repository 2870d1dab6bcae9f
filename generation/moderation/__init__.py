"""Content moderation for generation (docs/architecture.md, Moderation).

`prompts.check_prompt` runs before any credit is reserved; `images.check_image` runs on every
generated image before it is stored as servable. Both are pure: they take plain values and
return a verdict, so the caller decides what a refusal costs and records it. The submodules
are imported separately because the image detector pulls in onnxruntime and OpenCV, which
the web process does not need.
"""

"""A Stable-Diffusion-shaped pipeline of a few thousand random weights, built from configs
and saved with save_pretrained, for the diffusers engine's tests and benchmark: real code
paths (tokenizer, text encoder, UNet, scheduler, VAE) in milliseconds on a CPU, no download.

Its VAE scales by 8 as Stable Diffusion's does, so the sizes the API accepts are the
pipeline's own. With random weights its pictures are noise, but deterministic noise.
"""

import json
from pathlib import Path


def build_tiny_pipeline(directory: Path) -> Path:
    """Save the tiny pipeline into `directory` (created) and return it.

    Also keeps this process's torch to one thread: on cores shared with other processes,
    torch's spinning threads make every step of so small a model tens of times slower.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = Path(directory)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=2,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 4, 4, 4),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=2,
        layers_per_block=1,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=8,
            intermediate_size=16,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=64,
            max_position_embeddings=77,
            projection_dim=8,
        )
    )
    tokenizer = CLIPTokenizer(*_vocabulary(directory / "vocabulary"), model_max_length=77)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    model = directory / "pipeline"
    pipeline.save_pretrained(model)
    return model


def _vocabulary(directory: Path) -> tuple[str, str]:
    """A byte-pair vocabulary of single letters (CLIP's format), and no merges."""
    directory.mkdir(parents=True, exist_ok=True)
    vocabulary = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocabulary.setdefault(letter, len(vocabulary))
        vocabulary.setdefault(f"{letter}</w>", len(vocabulary))
    vocab_file, merges_file = directory / "vocab.json", directory / "merges.txt"
    vocab_file.write_text(json.dumps(vocabulary))
    merges_file.write_text("#version: 0.2\n")
    return str(vocab_file), str(merges_file)

"""Count how often NudeNet's detector flags harmless pictures of the `local` engine.

Run from the repository root:

    .venv/bin/python bench/moderation_false_positives.py [--sample main|held-out]
        [--jobs N] [--save detections.jsonl]

Every picture goes through the path a job takes: an EngineRequest built like
generation.pipeline._engine_request (catalog engine settings of the model), LocalEngine.generate,
then generation.moderation.images.check_image at each safety setting. The sample is every
prompt x style (and none) x local catalog model x size, one seed each, plus the case reported
in the issue ('a fox in the snow', 512 x 512, 10 steps, imagen-v2, 40 seeds). `held-out`
draws the same grid with seeds the main sample never uses. The detector runs once per
picture; the three settings judge its recorded answer.

It prints, per explicit class, how many pictures the detector saw it in, the score
distribution and the box sizes (the square root of the box's share of the image, so 0.25 is
a box a quarter of the image's side), then the pictures flagged under each setting, and
where the flags fall (prompt, style, model, size).
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.engines import EngineRequest, get_engine  # noqa: E402
from generation.engines.local import STYLES, _look, _settings  # noqa: E402
from generation.model_seeds import SEED_MODELS  # noqa: E402
from generation.moderation import images  # noqa: E402
from generation.moderation.safety import SafetySetting  # noqa: E402

PROMPTS = [
    "a fox in the snow",
    "a heron at dawn",
    "a fox",
    "a woman in a red dress",
    "portrait of an old man",
    "a girl with a pearl earring",
    "a bride in a white gown",
    "a ballerina on stage",
    "a baby in a pink blanket",
    "two friends on a beach",
    "a man swimming in the ocean",
    "a cat sleeping on a sofa",
    "a dog running in a meadow",
    "a bowl of peaches",
    "a lighthouse at dusk",
    "misty forest lake at dawn",
    "a red sunset over snowy mountains",
    "desert dunes at sunset",
    "cherry blossom in spring",
    "autumn leaves",
    "abstract shapes in pastel colours",
    "a cosy cabin in the woods",
]
MODELS = {m["id"]: m["engine_settings"] for m in SEED_MODELS if m["engine"] == "local"}
SIZES = [(512, 512), (1024, 768)]
STEPS = (10, 30)
SETTINGS = list(SafetySetting)
# Seeds of the held-out sample start here; the main sample stays far below it.
HELD_OUT_SEEDS = 1_000_000
REPORTED = {"prompt": "a fox in the snow", "steps": 10, "model": "imagen-v2", "size": (512, 512)}


def sample(name: str) -> list[dict]:
    base = HELD_OUT_SEEDS if name == "held-out" else 0
    cases = [
        {**REPORTED, "style": None, "seed": base + seed, "block": "reported"} for seed in range(40)
    ]
    index = 0
    for prompt in PROMPTS:
        for style in (None, *STYLES):
            for model in MODELS:
                for size in SIZES:
                    cases.append(
                        {
                            "prompt": prompt,
                            "style": style,
                            "model": model,
                            "size": size,
                            "steps": STEPS[index % 2],
                            "seed": base + 1000 + index,
                            "block": "grid",
                        }
                    )
                    index += 1
    return cases


class _RecordingDetector:
    """The process's detector, remembering its answers for the current picture.

    check_image is called once per safety setting on the same bytes; the detector runs once
    per distinct input (the picture, and the framed picture of a second look).
    """

    def __init__(self, detector):
        self.detector = detector
        self.answers = {}

    def detect(self, pixels):
        key = hash(pixels.tobytes())
        if key not in self.answers:
            self.answers[key] = self.detector.detect(pixels)
        return self.answers[key]


def judge(case: dict) -> dict:
    if not isinstance(images._detector, _RecordingDetector):
        images._detector = _RecordingDetector(images.load_detector())
    recorder = images._detector
    recorder.answers = {}
    width, height = case["size"]
    request = EngineRequest(
        prompt=case["prompt"],
        width=width,
        height=height,
        seed=case["seed"],
        steps=case["steps"],
        style=case["style"],
        settings=dict(MODELS[case["model"]]),
    )
    (png,) = get_engine("local").generate(request, lambda _: None)
    verdicts = {setting: images.check_image(png, safety_setting=setting) for setting in SETTINGS}
    landscape = _look(request, _settings(request.settings)).landscape
    first_look, *second_look = recorder.answers.values()
    return {
        **case,
        "scene": "landscape" if landscape else "abstract",
        "detections": first_look,
        "second_look": second_look[0] if second_look else None,
        "flagged": {str(s): list(v.flagged_classes) for s, v in verdicts.items()},
    }


def describe(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    p90 = values[round(0.9 * (len(values) - 1))]
    return (
        f"median {statistics.median(values):.2f}, p90 {p90:.2f}, "
        f"min {values[0]:.2f}, max {values[-1]:.2f}"
    )


def report(results: list[dict]) -> None:
    total = len(results)
    print(f"\n## {total} pictures\n")
    print("### Flagged per safety setting\n")
    for setting in SETTINGS:
        flagged = [r for r in results if r["flagged"][str(setting)]]
        reported = [r for r in flagged if r["block"] == "reported"]
        print(
            f"- {setting}: {len(flagged)} of {total} ({100 * len(flagged) / total:.1f} %); "
            f"the reported case: {len(reported)} of 40"
        )

    print("\n### Explicit classes the detector reported (score >= 0.25)\n")
    for label in images.EXPLICIT_CLASSES:
        found = [
            (d["score"], _box_side(d["box"], r["size"]))
            for r in results
            for d in r["detections"]
            if d["class"] == label
        ]
        if not found:
            print(f"- {label}: never")
            continue
        pictures = sum(any(d["class"] == label for d in r["detections"]) for r in results)
        print(f"- {label}: {len(found)} boxes in {pictures} pictures")
        print(f"  - score: {describe([s for s, _ in found])}")
        print(f"  - box side / image side: {describe([b for _, b in found])}")
        filling = [r for r in results if _frame_filling(r, label)]
        if filling:
            second = [_second_look(r, label) for r in filling]
            print(
                f"  - pictures with a frame-filling box: {len(filling)}; the class on the "
                f"second look: {describe(second)}"
            )
        flagged_by = {str(s): sum(label in r["flagged"][str(s)] for r in results) for s in SETTINGS}
        print(f"  - pictures flagged for it: {flagged_by}")

    others = Counter(
        d["class"]
        for r in results
        for d in r["detections"]
        if d["class"] not in images.EXPLICIT_CLASSES
    )
    print(f"\nOther classes (never flag): {dict(others.most_common())}")

    for setting in (SafetySetting.BLOCK_LOW_AND_ABOVE, SafetySetting.BLOCK_MEDIUM_AND_ABOVE):
        flagged = [r for r in results if r["flagged"][str(setting)]]
        print(f"\n### Where the {setting} flags fall ({len(flagged)})\n")
        for key in ("scene", "prompt", "style", "model", "size", "steps"):
            counts = defaultdict(int)
            for r in flagged:
                counts[str(r[key])] += 1
            print(f"- {key}: {dict(sorted(counts.items(), key=lambda item: -item[1]))}")

    print("\n### Highest explicit scores\n")
    top = sorted(
        (
            (d["score"], d, r)
            for r in results
            for d in r["detections"]
            if d["class"] in images.EXPLICIT_CLASSES
        ),
        key=lambda item: -item[0],
    )[:15]
    for score, detection, r in top:
        print(
            f"- {score:.2f} {detection['class']} box {detection['box']} "
            f"(side {_box_side(detection['box'], r['size']):.2f}): {r['prompt']!r} "
            f"seed {r['seed']} style {r['style']} {r['model']} {r['size'][0]}x{r['size'][1]} "
            f"steps {r['steps']} ({r['scene']})"
        )


def _frame_filling(result: dict, label: str) -> bool:
    width, height = result["size"]
    return any(
        d["class"] == label
        and d["box"][2] >= images.FRAME_FILLING * width
        and d["box"][3] >= images.FRAME_FILLING * height
        for d in result["detections"]
    )


def _second_look(result: dict, label: str) -> float:
    # Pictures without a frame-filling box of a flagging class get no second look.
    second = result.get("second_look") or []
    return max([d["score"] for d in second if d["class"] == label] or [0.0])


def _box_side(box: list[int], size: tuple[int, int]) -> float:
    _, _, w, h = box
    return ((w * h) / (size[0] * size[1])) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", choices=("main", "held-out"), default="main")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes, one core each")
    parser.add_argument("--save", help="write every picture's detections here (JSON lines)")
    args = parser.parse_args()

    cases = sample(args.sample)
    print(f"# local engine vs NudeNet, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# {os.cpu_count()} CPUs, Python {platform.python_version()}, {args.jobs} process(es); "
        f"sample {args.sample}: {len(cases)} pictures"
    )
    started = time.perf_counter()
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            results = pool.map(judge, cases, chunksize=8)
    else:
        results = [judge(case) for case in cases]
    print(f"# {time.perf_counter() - started:.0f} s")
    if args.save:
        with open(args.save, "w") as file:
            for result in results:
                file.write(json.dumps(result) + "\n")
    report(results)


if __name__ == "__main__":
    main()

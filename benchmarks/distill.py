"""Distillation: a student trained alone against the same student distilled from a resnet18 teacher, at equal
epochs, in one run.

    python benchmarks/distill.py                         # lenet, 10 epochs; teacher: resnet18 small stem, 3
    python benchmarks/distill.py --student mobilenet_v3_small --epochs 5
    python benchmarks/distill.py --seeds 1 2 3           # each student pair once per seed; medians

Data: benchmarks/colour_digits.py's photo-like RGB digits at 32x32 (2,000 train / 500 val from unseen
handwriting). The teacher is `python train.py model=resnet18 model.stem=small` for --teacher-epochs; each
student is `python train.py model=STUDENT` for --epochs, alone and with `distill.teacher=<the teacher's run>`
(temperature 4, alpha 0.5), every process alone on the machine. Prints final val top-1 and images/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--student", default="lenet")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="a student pair per seed")
    args = parser.parse_args()
    from colour_digits import make_colour_digits, train_on

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = make_colour_digits(scratch / "digits", n_train=2000, n_val=500)
        teacher = train_on(
            root,
            scratch / "teacher",
            ["model=resnet18", "model.stem=small", f"trainer.max_epochs={args.teacher_epochs}"],
        )
        runs: dict[str, list[dict]] = {"student alone": [], "student distilled": []}
        for seed in args.seeds:
            student = [f"model={args.student}", f"trainer.max_epochs={args.epochs}", f"seed={seed}"]
            runs["student alone"].append(train_on(root, scratch / f"alone-{seed}", student))
            distill = [*student, f"distill.teacher={scratch / 'teacher'}"]
            runs["student distilled"].append(train_on(root, scratch / f"distilled-{seed}", distill))
    print(
        f"\n{args.student} at 32x32, {args.epochs} epochs, seeds {args.seeds}; "
        f"teacher resnet18 (small stem), {args.teacher_epochs} epochs:\n"
    )
    print("| run | final val top-1 (median) | each seed | train images/s (median) |")
    print("| --- | --- | --- | --- |")
    for name, found in (("teacher", [teacher]), *runs.items()):
        tops = [m["final_val_top1"] for m in found]
        speed = statistics.median(m["train_images_per_second"] for m in found)
        each = ", ".join(f"{t:.3f}" for t in tops)
        print(f"| {name} | {statistics.median(tops):.3f} | {each} | {speed:.0f} |")


if __name__ == "__main__":
    main()

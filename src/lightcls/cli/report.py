"""`lightcls-report RUN_DIR`: (re)write a run's self-contained report.html."""

from __future__ import annotations

import argparse
import sys

from lightcls.errors import LightclsError


def main(argv: list[str] | None = None) -> None:
    """Entry point of `lightcls-report`."""
    parser = argparse.ArgumentParser(
        prog="lightcls-report", description="Write RUN_DIR/report.html for a training or eval run."
    )
    parser.add_argument("run_dir", help="a training run dir (metrics.json) or an eval run dir (eval.json)")
    parser.add_argument(
        "--cams", type=int, default=8, help="Grad-CAM pictures of the most confident mistakes"
    )
    parser.add_argument("--method", default="gradcam", help="the CAM method (see lightcls-explain)")
    args = parser.parse_args(argv)
    from lightcls.workflows.page import build_report  # torch and matplotlib: after the arguments

    try:
        path = build_report(args.run_dir, args.cams, args.method)
    except LightclsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

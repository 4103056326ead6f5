"""`lightcls-runs DIR...`: compare finished runs; and the Hydra callback that summarizes every multirun."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lightcls.errors import LightclsError
from lightcls.evaluation.runs import find_runs, print_summary, summarize, write_summary

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """At the end of a multirun: `summary.csv`/`summary.json` in the sweep dir and a table, best first."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        try:
            rows = summarize(find_runs([sweep]))
        except LightclsError as err:  # no job finished: nothing to compare
            log.warning("no sweep summary: %s", err)
            return
        write_summary(rows, sweep)
        print_summary(rows, f"lightcls sweep: {len(rows)} runs in {sweep}, best first")
        failed = [row for row in rows if row.get("failed")]
        if failed:  # every other job ran and is in the summary; the command still says it did not all work
            jobs = "; ".join(f"{Path(row['run_dir']).name}: {row['failed']}" for row in failed)
            print(f"error: {len(failed)} of {len(rows)} jobs failed ({jobs})", file=sys.stderr)
            sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `lightcls-runs`."""
    parser = argparse.ArgumentParser(
        prog="lightcls-runs", description="Compare runs: one row per run dir (metrics.json), best first."
    )
    parser.add_argument("paths", nargs="+", help="run dirs, or folders searched for them (a sweep dir)")
    parser.add_argument("--objective", default="best_val_top1", help="the metrics.json key to sort by")
    parser.add_argument("--write", metavar="DIR", help="also write summary.csv and summary.json into DIR")
    args = parser.parse_args(argv)
    try:
        rows = summarize(find_runs(args.paths), args.objective)
    except LightclsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if args.write:
        write_summary(rows, Path(args.write))
    print_summary(rows, f"lightcls runs: {len(rows)}, best {args.objective} first")


if __name__ == "__main__":
    main()

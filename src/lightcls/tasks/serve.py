"""The serve task: answer image requests over HTTP with a trained model until stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lightcls.ckpt import model_file
from lightcls.inference.serving import build_server, run_server
from lightcls.workflows.checks import check_serve


def serve(cfg: DictConfig) -> dict[str, Any]:
    """Serve `cfg.ckpt_path` on `cfg.host`:`cfg.port` until Ctrl-C or SIGTERM; returns what it served."""
    check_serve(cfg)
    path = model_file(Path(str(cfg.ckpt_path)).expanduser())
    host = str(cfg.host)
    server = build_server(
        path,
        device=str(cfg.device),
        provider=cfg.provider,
        topk=int(cfg.topk),
        max_batch_size=int(cfg.max_batch_size),
        batch_timeout_ms=float(cfg.batch_timeout),
        workers=int(cfg.workers),
        max_body_mb=float(cfg.max_body_mb),
        max_pixels=int(cfg.max_pixels),
        api_key=str(cfg.api_key) if cfg.api_key else None,
        threads=cfg.threads,
        min_score=cfg.get("min_score"),
    )
    run_server(server, host, int(cfg.port), str(cfg.log_level))
    return {"model": str(path), "host": host, "port": int(cfg.port)}

"""Images with their prediction drawn on them (predict's annotate=true, eval's show_dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from lightcls.evaluation.fonts import caption_font
from lightcls.files import PNG


def annotate(source: Path, result: dict[str, Any], target: Path) -> Path:
    """A copy of the image, at least 256 px, with its predicted class and score written on it."""
    with Image.open(source) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
    scale = max(1.0, 256 / min(img.size))
    if scale > 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    text = f"{result['pred_class']} {result['pred_score']:.2f}"
    font = caption_font(max(14, img.height // 16))
    left, top, right, bottom = draw.textbbox((4, 4), text, font=font)
    draw.rectangle((0, 0, right + 4, bottom + 4), fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 0), font=font)
    target.parent.mkdir(parents=True, exist_ok=True)
    img.save(target.with_suffix(".png"), **PNG)
    return target.with_suffix(".png")

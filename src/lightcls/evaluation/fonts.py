"""Fonts for class names in pictures: Chinese, Japanese or Korean names (an MMEdu class's "石头") drawn with
an installed CJK font where there is one, instead of empty boxes."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from functools import cache
from typing import Any

from PIL import ImageFont

log = logging.getLogger(__name__)
#: installed fonts that draw CJK, tried in this order: Windows, macOS, then Linux packages
#: (fonts-noto-cjk, fonts-wqy-zenhei), then Adobe's and Arial's
CJK_FONTS = (
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Source Han Sans SC",
    "Arial Unicode MS",
)


@cache
def cjk_font() -> tuple[str, str] | None:
    """The name and file of the first font of CJK_FONTS installed, or None. matplotlib's font list is a
    cache built on first use: font files installed since then are read and added to it once."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    found = _first_cjk(manager.ttflist)
    if found is None:
        known = {f.fname for f in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                with contextlib.suppress(
                    Exception
                ):  # a file FreeType cannot read is skipped, as matplotlib does
                    manager.addfont(path)
        found = _first_cjk(manager.ttflist)
    return found


def _first_cjk(fonts: list[Any]) -> tuple[str, str] | None:
    files = {f.name: f.fname for f in fonts}
    return next(((name, files[name]) for name in CJK_FONTS if name in files), None)


def caption_font(size: int) -> Any:
    """A Pillow font for captions with class names: the installed CJK font, else Pillow's own."""
    found = cjk_font()
    return ImageFont.truetype(found[1], size) if found else ImageFont.load_default(size=size)


def warn_missing_glyphs(names: list[str] | tuple[str, ...] | Any) -> None:
    """One log line where class names have characters beyond Latin and no CJK font is installed (Pillow
    draws them as boxes)."""
    if cjk_font() is None and any(ord(ch) > 0x2FF for name in names for ch in str(name)):
        log.warning(MISSING)


MISSING = (
    "some class names show as boxes in the figures: no installed font has their characters "
    "(install one, e.g. fonts-noto-cjk or fonts-wqy-zenhei, then remove ~/.cache/matplotlib)"
)


@contextlib.contextmanager
def figure_fonts() -> Iterator[None]:
    """matplotlib text drawn with its default font, falling back glyph by glyph to the installed CJK font;
    where none draws a name, one log line instead of a warning per missing character."""
    import matplotlib

    found = cjk_font()
    families = ["DejaVu Sans", *([found[0]] if found else [])]
    chatty = logging.getLogger("matplotlib.font_manager")  # "no weight normal for WenQuanYi Zen Hei: 500"
    level, chatty.level = chatty.level, logging.ERROR
    try:
        with matplotlib.rc_context({"font.family": families}), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        chatty.setLevel(level)
    missing = [w for w in caught if "missing from font" in str(w.message)]
    for other in (w for w in caught if w not in missing):
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    if missing:
        log.warning(MISSING)

"""Image files (PNG, JPEG, anything Pillow reads) as 32 x 32 RGB uint8 arrays for a model.

Pillow is the optional ``image`` extra, imported only when a file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from svmtrain.errors import ImageError
from svmtrain.fileio import atomic_write

INSTALL_HINT = "pip install 'svmtrain[image]'"
SIDE = 32


def require_pillow() -> Any:
    """The ``PIL`` package's Image and ImageOps modules; ImageError with the install command
    if Pillow is missing."""
    try:
        from PIL import Image, ImageOps
    except ImportError as err:
        raise ImageError(
            f"Reading image files needs Pillow, which is not installed ({err}). "
            f"Install the image extra: {INSTALL_HINT}"
        ) from None
    return Image, ImageOps


def read_image(path: str | Path) -> np.ndarray:
    """The image at ``path`` as (32, 32, 3) uint8 RGB: turned upright as its EXIF data says,
    converted to RGB (grey levels repeated, transparency dropped), its central square resized
    to 32 x 32 (Lanczos). Raises ImageError naming the file if it is missing or unreadable."""
    Image, ImageOps = require_pillow()
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"No image file at {path}.")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img = ImageOps.fit(img, (SIDE, SIDE), method=Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.uint8).copy()
    except Image.UnidentifiedImageError:
        raise ImageError(
            f"{path} is not an image Pillow can read; pass a PNG or JPEG file."
        ) from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"{path} cannot be read as an image ({err}).") from None


# How Pillow's modes reach RGB, when that changes what the photo shows (read_image's convert).
_GREY = "grey levels repeated in red, green and blue"
_ALPHA = "transparency dropped (transparent pixels show the colour stored under them)"
_CONVERSIONS = {
    "1": "black-and-white pixels repeated in red, green and blue",
    "L": _GREY,
    "LA": _GREY,
    "La": _GREY,
    "I": _GREY,
    "I;16": _GREY,
    "I;16B": _GREY,
    "I;16L": _GREY,
    "F": _GREY,
    "CMYK": "CMYK colours converted",
}
_WITH_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")


def conversion_note(path: str | Path) -> str | None:
    """What turning the image at ``path`` into RGB changes, as a phrase ("grey levels
    repeated in red, green and blue"; "transparency dropped (...)" only when some pixel is
    not opaque); None for RGB (and for colours that convert as they are, such as a palette
    without transparency). Call it after :func:`read_image` has read the file (which refuses
    what is too large to decode). Raises ImageError if the file cannot be opened."""
    Image, _ = require_pillow()
    try:
        with Image.open(path) as img:
            mode = img.mode
            alpha = mode in _WITH_ALPHA or (mode == "P" and "transparency" in img.info)
            see_through = alpha and img.convert("RGBA").getchannel("A").getextrema()[0] < 255
    except (OSError, ValueError) as err:
        raise ImageError(f"{path} cannot be read as an image ({err}).") from None
    notes = [n for n in (_CONVERSIONS.get(mode), _ALPHA if see_through else None) if n]
    return ", ".join(notes) or None


def write_png(path: str | Path, images: np.ndarray, *, zoom: int = 4, gap: int = 4) -> Path:
    """``images`` (N, 32, 32, 3) uint8, each enlarged ``zoom`` times without smoothing (each
    pixel a zoom x zoom square, so the 32 x 32 grid stays visible), side by side on white with
    ``gap`` pixels between, as a PNG at ``path``, written atomically; returns its path.
    Raises ImageError without Pillow, SvmtrainError naming the file when it cannot be written."""
    Image, _ = require_pillow()
    n, side = len(images), SIDE * zoom
    strip = np.full((side, n * side + (n - 1) * gap, 3), 255, dtype=np.uint8)
    for k, image in enumerate(images):
        left = k * (side + gap)
        strip[:, left : left + side] = image.repeat(zoom, axis=0).repeat(zoom, axis=1)
    with atomic_write(path) as f:
        Image.fromarray(strip).save(f, format="PNG")
    return Path(path)

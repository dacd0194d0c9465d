"""Image files (PNG, JPEG, anything Pillow reads) as 32 x 32 RGB uint8 arrays for a model.

Pillow is the optional ``image`` extra, imported only when a file is read.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from svmtrain.errors import ImageError
from svmtrain.fileio import atomic_write

INSTALL_HINT = "pip install 'svmtrain[image]'"
SIDE = 32
# Images of more pixels are refused before they are decoded: a file of a few bytes may declare
# 9000 x 9000 pixels (decoding one costs hundreds of MB), and a 32 x 32 picture needs no more
# than a large photo's 50 megapixels (8,000 x 6,000 is 48).
MAX_PIXELS = 50_000_000


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
    its levels brought to 8 bits as a viewer shows them (see :func:`eight_bit`), converted to
    RGB (grey levels repeated, transparency dropped), its central square resized to 32 x 32
    (Lanczos).

    Raises ImageError naming the file if it is missing, not an image, larger than MAX_PIXELS
    (checked from its header, before decoding) or damaged: whatever the decoder raises or
    warns, the caller gets one ImageError, and nothing is written to the terminal.
    """
    Image, ImageOps = require_pillow()
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"No image file at {path}.")
    try:
        with _decoder_quiet(), Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"{path} is {width:,} x {height:,} pixels, more than svmtrain reads "
                    f"({MAX_PIXELS // 1_000_000} megapixels); shrink it first (the model sees "
                    f"{SIDE} x {SIDE})."
                )
            img = eight_bit(ImageOps.exif_transpose(img), path).convert("RGB")
            img = ImageOps.fit(img, (SIDE, SIDE), method=Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.uint8).copy()
    except Image.UnidentifiedImageError:
        raise ImageError(
            f"{path} is not an image Pillow can read (damaged, or of a format it does not "
            "know); pass a PNG or JPEG file."
        ) from None
    except (ImageError, MemoryError):
        raise
    except Exception as err:  # each of Pillow's decoders raises its own kinds of error
        raise ImageError(
            f"{path} cannot be read as an image; it is damaged or in a form Pillow does not "
            f"decode ({type(err).__name__}: {err})."
        ) from None


def eight_bit(img: Any, path: Path) -> Any:
    """``img`` with 8-bit levels: 16-bit grey ("I;16...") scaled by 255/65535, 32-bit integer
    grey ("I", how Pillow reads some 16-bit files) read as 16-bit levels, float grey ("F") in
    [0, 1] scaled by 255 (other floats taken as 0..255 levels, as Pillow does); clipped and
    rounded. Other modes are returned as they are. Raises ImageError for float levels that
    are not finite."""
    from PIL import Image

    if not (img.mode.startswith("I") or img.mode == "F"):
        return img
    levels = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        if not np.all(np.isfinite(levels)):
            raise ImageError(f"{path} holds levels that are not finite numbers (NaN or inf).")
        full = 1.0 if levels.size and levels.min() >= 0 and levels.max() <= 1 else 255.0
    else:
        full = 65535.0
    grey = np.clip(np.rint(levels * (255.0 / full)), 0, 255).astype(np.uint8)
    return Image.fromarray(grey)


@contextlib.contextmanager
def _decoder_quiet() -> Iterator[None]:
    """Inside, Python warnings are not shown (Pillow warns of corrupt EXIF data and large
    images, which the caller checks itself) and what C libraries such as libtiff write to
    standard error is swallowed (it names temporary files the user never made)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            saved = os.dup(_STDERR)
        except OSError:  # standard error is closed: nothing to guard
            yield
            return
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()
        try:
            sink = os.open(os.devnull, os.O_WRONLY)
            os.dup2(sink, _STDERR)
            os.close(sink)
            yield
        finally:
            os.dup2(saved, _STDERR)
            os.close(saved)


_STDERR = 2  # the file descriptor C libraries write their messages to


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
        with _decoder_quiet(), Image.open(path) as img:
            mode = img.mode
            alpha = mode in _WITH_ALPHA or (mode == "P" and "transparency" in img.info)
            see_through = alpha and img.convert("RGBA").getchannel("A").getextrema()[0] < 255
    except Exception as err:  # each of Pillow's decoders raises its own kinds of error
        raise ImageError(f"{path} cannot be read as an image ({type(err).__name__}).") from None
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

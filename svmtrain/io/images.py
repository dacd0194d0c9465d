"""Image files (PNG, JPEG, anything Pillow reads) as 32 x 32 RGB uint8 arrays for a model.

Pillow is the optional ``image`` extra, imported only when a file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from svmtrain.errors import ImageError

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

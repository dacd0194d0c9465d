"""`svmtrain predict`: image files and CIFAR-10 test images scored by a saved model."""

import builtins
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from svmtrain.cli import main
from svmtrain.config import config_to_yaml, load_config
from svmtrain.data import load_cifar10
from svmtrain.data.preprocess import PixelTransform
from svmtrain.model import LinearModel


@pytest.fixture
def archive(tiny_archive):
    return tiny_archive(train_counts=(4,) * 5, test_count=12)


@pytest.fixture
def weights(archive, http_server, tmp_path):
    """A weights.npz whose config points at a cache holding ``archive``, and its model."""
    data_dir = tmp_path / "data"
    with http_server(archive.body) as server:
        load_cifar10(data_dir, url=server.url, sha256=archive.sha256, progress=False)
        url = server.url
    cfg = load_config(
        overrides=[f"data.dir={data_dir}", f"data.url={url}", f"data.sha256={archive.sha256}"]
    )
    rng = np.random.default_rng(3)
    model = LinearModel(
        W=rng.standard_normal((10, 3073)).astype(np.float32),
        transform=PixelTransform(
            rng.uniform(80, 160, 3072).astype(np.float32),
            rng.uniform(30, 70, 3072).astype(np.float32),
        ),
        class_names=archive.class_names,
        loss="svm",
        config_yaml=config_to_yaml(cfg),
    )
    path = tmp_path / "weights.npz"
    model.save(path)
    return path, model


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _expected(model, image_hwc):
    scores = model.scores(image_hwc[None])[0]
    return model.class_names[int(np.argmax(scores))], scores


def test_image_files_of_any_size_and_mode(weights, tmp_path):
    path, model = weights
    rng = np.random.default_rng(4)
    exact = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(exact).save(tmp_path / "exact.png")
    # A uniform colour stays that colour through any crop and resize.
    Image.new("RGBA", (100, 60), (200, 30, 90, 128)).save(tmp_path / "wide.png")
    Image.new("L", (40, 90), 77).save(tmp_path / "grey.png")
    Image.fromarray(exact).save(tmp_path / "photo.jpg", quality=95)

    files = ["exact.png", "wide.png", "grey.png", "photo.jpg"]
    result = _run("predict", "-w", path, *(tmp_path / f for f in files), "--json", "-q")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # the transparent and the grey photo say how they were converted; the RGB ones say nothing
    assert result.stderr.splitlines() == [
        f"Note: {tmp_path / 'wide.png'} was converted to RGB: transparency dropped "
        "(transparent pixels show the colour stored under them).",
        f"Note: {tmp_path / 'grey.png'} was converted to RGB: grey levels repeated in red, "
        "green and blue.",
    ]
    assert [r.get("converted") is not None for r in out] == [False, True, True, False]
    assert [r["image"] for r in out] == [str(tmp_path / f) for f in files]
    references = [
        exact,
        np.broadcast_to(np.array([200, 30, 90], np.uint8), (32, 32, 3)),
        np.full((32, 32, 3), 77, np.uint8),
    ]
    for r, image in zip(out, references, strict=False):
        label, scores = _expected(model, np.ascontiguousarray(image))
        assert r["class"] == label
        assert list(r["scores"]) == list(model.class_names)
        assert np.allclose(list(r["scores"].values()), scores, rtol=1e-5, atol=1e-3)
        assert "true_class" not in r
    jpeg = out[3]
    assert jpeg["class"] == max(jpeg["scores"], key=jpeg["scores"].get)


def test_test_images_by_index(weights, archive):
    path, model = weights
    result = _run("predict", "-w", path, "-i", 7, "--test-index", 0, "--json", "-q")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for r, i in zip(out, (7, 0), strict=True):
        assert r["image"] == f"test[{i}]"
        assert r["true_class"] == archive.class_names[archive.y_test[i]]
        hwc = archive.x_test[i].reshape(3, 32, 32).transpose(1, 2, 0)
        label, scores = _expected(model, np.ascontiguousarray(hwc))
        assert r["class"] == label
        assert np.allclose(list(r["scores"].values()), scores, rtol=1e-5, atol=1e-3)


def test_text_output_is_a_table(weights, archive, tmp_path):
    path, _ = weights
    Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "a.png")
    result = _run("predict", "-w", path, tmp_path / "a.png", "-i", 3, "-q")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("class scores (margins: the highest wins; they are not")
    assert lines[2].split()[:3] == ["image", "class", "true"]
    assert lines[2].split()[3:] == list(archive.class_names)  # whole names, none cut
    assert lines[4].startswith(str(tmp_path / "a.png")) and lines[5].startswith("test[3]")


@pytest.mark.parametrize(
    ("make", "args", "code", "message"),
    [
        (None, ["missing.png"], 1, "No image file at"),
        ("text", ["notes.png"], 1, "is not an image Pillow can read"),
        (None, ["-i", 12], 1, "Test index 12 is out of range: the test split has 12 images"),
        (None, ["-i", -1], 2, "-1 is not in the range x>=0"),
        (None, [], 2, "Give at least one IMAGE file or --test-index I."),
    ],
)
def test_bad_input_is_one_clear_error(weights, tmp_path, make, args, code, message):
    path, _ = weights
    if make == "text":
        (tmp_path / "notes.png").write_text("hello")
    args = [tmp_path / a if str(a).endswith(".png") else a for a in args]
    result = _run("predict", "-w", path, *args, "-q")
    assert result.exit_code == code
    assert message in result.output


def test_missing_weights_are_one_clear_error(tmp_path):
    result = _run("predict", "-w", tmp_path / "none.npz", "-i", 0)
    assert result.exit_code == 1
    assert "No weights file at" in result.output


def test_without_pillow_the_message_says_how_to_install(weights, tmp_path, monkeypatch):
    path, _ = weights
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    result = _run("predict", "-w", path, tmp_path / "a.png")
    assert result.exit_code == 1
    assert "pip install 'svmtrain[image]'" in result.output


@pytest.fixture
def softmax_weights(weights, tmp_path):
    """The same model, scaled down, as softmax: its scores are logits of a few units, so that
    no probability is 0 or 1 to float32 precision."""
    _, model = weights
    W = model.W * np.float32(0.05)
    softmax = LinearModel(W, model.transform, model.class_names, "softmax", model.config_yaml)
    softmax_path = tmp_path / "softmax.npz"
    softmax.save(softmax_path)
    return softmax_path, softmax


def _softmax_by_hand(scores):
    """exp(s_j - max) / sum_k exp(s_k - max), in float64, one image at a time."""
    s = np.asarray(scores, dtype=np.float64)
    e = np.exp(s - s.max())
    return e / e.sum()


def test_a_softmax_model_gives_probabilities_and_the_top_k(softmax_weights, archive):
    path, model = softmax_weights
    result = _run("predict", "-w", path, "-i", 2, "-i", 5, "--top", 3, "--json", "-q")
    assert result.exit_code == 0, result.output
    for r, i in zip(json.loads(result.stdout), (2, 5), strict=True):
        hwc = np.ascontiguousarray(archive.x_test[i].reshape(3, 32, 32).transpose(1, 2, 0))
        _, scores = _expected(model, hwc)
        expected = _softmax_by_hand(scores)
        assert list(r["probabilities"].values()) == pytest.approx(expected, rel=1e-5, abs=1e-9)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0)
        best = np.argsort(-expected)[:3]
        assert [t["class"] for t in r["top"]] == [model.class_names[k] for k in best]
        assert [t["probability"] for t in r["top"]] == pytest.approx(expected[best], rel=1e-5)
        assert r["top"][0]["class"] == r["class"]

    text = _run("predict", "-w", path, "-i", 2, "--top", 2, "-q")
    lines = text.stdout.splitlines()
    assert lines[0] == "probabilities (the softmax of the class scores)"
    assert lines[2].split() == ["image", "class", "true", "#1", "#2"]
    top = json.loads(result.stdout)[0]["top"]
    cells = [[t["class"], f"{t['probability']:.3f}"] for t in top[:2]]
    assert lines[4].split()[-4:] == [*cells[0], *cells[1]]


def test_an_svm_top_k_ranks_by_score(weights):
    path, _ = weights
    result = _run("predict", "-w", path, "-i", 4, "--top", 10, "--json", "-q")
    (r,) = json.loads(result.stdout)
    assert "probabilities" not in r
    assert [t["score"] for t in r["top"]] == sorted(r["scores"].values(), reverse=True)
    assert _run("predict", "-w", path, "-i", 4, "--top", 11, "-q").exit_code == 2


def test_show_writes_the_32_by_32_images_the_model_saw(weights, archive, tmp_path):
    """A 100 x 60 photo is cropped to its central 60 x 60 and resized: the PNG shows that, four
    times enlarged, beside test image 1 as it is stored; a second run does not overwrite it."""
    path, _ = weights
    rng = np.random.default_rng(8)
    photo = rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    seen = tmp_path / "seen.png"
    result = _run("predict", "-w", path, tmp_path / "photo.png", "-i", 1, "--show", seen, "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"wrote {seen}"
    strip = np.asarray(Image.open(seen))
    assert strip.shape == (128, 128 + 4 + 128, 3)
    # independent of svmtrain's reader: Pillow's own crop and resize of the photo
    central = (20, 0, 80, 60)
    crop = Image.fromarray(photo).resize((32, 32), Image.Resampling.LANCZOS, box=central)
    assert np.array_equal(strip[::4, :128:4], np.asarray(crop))
    test1 = archive.x_test[1].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(strip[::4, 132::4], test1)
    assert (strip[:, 128:132] == 255).all()

    before = seen.read_bytes()
    again = _run("predict", "-w", path, "-i", 0, "--show", seen, "-q")
    assert again.exit_code == 1 and f"{seen} already exists" in again.stderr
    assert "--force" in again.stderr and seen.read_bytes() == before
    forced = _run("predict", "-w", path, "-i", 0, "--show", seen, "--force", "-q")
    assert forced.exit_code == 0 and seen.read_bytes() != before


def test_show_must_be_a_png_in_a_directory_that_exists(weights, tmp_path):
    path, _ = weights
    bad = _run("predict", "-w", path, "-i", 0, "--show", tmp_path / "seen.jpg")
    assert bad.exit_code == 2 and "does not end in .png" in bad.stderr
    bad = _run("predict", "-w", path, "-i", 0, "--show", tmp_path / "no" / "seen.png")
    assert bad.exit_code == 2 and "does not exist" in bad.stderr


@pytest.mark.parametrize(
    ("mode", "note"),
    [
        ("RGB", None),
        ("P", None),  # a palette without transparency converts as it is
        ("L", "grey levels repeated"),
        ("1", "black-and-white pixels repeated"),
        ("I;16", "grey levels repeated"),
        ("LA", "grey levels repeated in red, green and blue, transparency dropped"),
        ("RGBA", "transparency dropped"),
        ("opaque RGBA", None),  # an alpha channel that hides nothing changes nothing
        ("CMYK", "CMYK colours converted"),
    ],
)
def test_a_conversion_to_rgb_is_said_for_each_mode_that_changes_the_photo(tmp_path, mode, note):
    from svmtrain.io.images import conversion_note

    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    if mode == "opaque RGBA":
        Image.new("RGBA", (8, 8), (10, 20, 30, 255)).save(path)
    else:
        Image.new(mode, (8, 8)).save(path)  # alpha 0 where there is alpha
    found = conversion_note(path)
    assert found is None if note is None else found.startswith(note)


def test_a_palette_with_a_transparent_colour_says_so(tmp_path):
    from svmtrain.io.images import conversion_note

    image = Image.new("P", (8, 8))
    image.info["transparency"] = 0
    image.save(tmp_path / "x.png", transparency=0)
    assert conversion_note(tmp_path / "x.png").startswith("transparency dropped")

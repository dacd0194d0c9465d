"""The command line without a checkout: ``python -m svmtrain``, the shipped configs by name,
``svmtrain configs list`` and ``svmtrain configs show``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from svmtrain import __version__
from svmtrain.cli import main
from svmtrain.config import Config, config_from_dict, config_to_dict, load_config
from svmtrain.config.rules import KEYS
from svmtrain.config.shipped import shipped_text
from svmtrain.data.cifar10 import load_cifar10


def _module(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m svmtrain ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "svmtrain", *args], capture_output=True, text=True, timeout=timeout
    )


def test_python_m_svmtrain_is_the_cli():
    done = _module("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == CliRunner().invoke(main, ["--version"]).output
    assert __version__ in done.stdout


def test_python_m_svmtrain_keeps_exit_codes_and_names_itself():
    done = _module("fit", "--no-such-option")
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: svmtrain fit ")


CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = sorted(CONFIGS_DIR.glob("*.yaml"))
NAMES = sorted([*(p.stem for p in SHIPPED), "notes"])  # notes: the built-in defaults, no file
DEFAULTS = config_to_dict(Config())


def _run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def test_configs_list_names_each_config_with_its_first_line():
    result = _run("configs", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(SHIPPED) + 1  # and notes, the built-in defaults
    for line, name in zip(lines, NAMES, strict=True):
        listed, summary = line.split(maxsplit=1)
        text = shipped_text(name) if name == "notes" else (CONFIGS_DIR / f"{name}.yaml").read_text()
        assert (listed, f"# {summary}") == (name, text.splitlines()[0])


def test_notes_is_a_config_name_like_the_others(tmp_path, monkeypatch):
    """The built-in defaults are called 'notes' in --help: show prints them, -c notes runs them."""
    monkeypatch.chdir(tmp_path)
    result = _run("configs", "show", "notes")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# The built-in defaults")
    (tmp_path / "mine.yaml").write_text(result.output)
    assert load_config("mine.yaml", ["output.name=notes"]) == load_config() == load_config("notes")
    assert load_config("notes").output.name == "notes"
    assert list(tmp_path.iterdir()) == [tmp_path / "mine.yaml"]


@pytest.mark.parametrize("name", NAMES)
def test_configs_show_prints_every_key_resolved_and_explained_and_writes_nothing(
    name, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = _run("configs", "show", name)
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []
    text = result.output
    file = CONFIGS_DIR / f"{name}.yaml"
    header = file.read_text().split("\n\n")[0] if file.exists() else shipped_text(name)[:40]
    assert text.startswith(header)  # what it is and why its values, from the file
    raw = yaml.safe_load(text)
    assert {s: set(v) for s, v in raw.items()} == {s: set(v) for s, v in DEFAULTS.items()}
    assert set(raw["features"]["kmeans"]) == set(DEFAULTS["features"]["kmeans"])
    assert config_from_dict(raw) == load_config(name)
    body = text[text.index("\ndata:") :]
    key_lines = [line for line in body.splitlines() if line.strip()]
    assert len(key_lines) == len(KEYS) + len(DEFAULTS) + 2  # keys, sections, two extractors
    assert all("  # " in line for line in key_lines)
    docs = {line.split("  # ")[1] for line in key_lines if line.startswith("    ")}
    assert "K centroids; pooling_grid**2 * K features" in docs
    assert "docs/" not in text and ".py" not in text and "configs/" not in text  # a wheel has none


def test_configs_show_out_writes_a_new_file_that_fit_reads(tmp_path):
    out = tmp_path / "mine.yaml"
    result = _run("configs", "show", "quick", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out}\n"
    assert out.read_text() == _run("configs", "show", "quick").output
    assert load_config(out) == load_config("quick")


def test_configs_show_out_never_overwrites(tmp_path):
    out = tmp_path / "mine.yaml"
    out.write_text("mine\n")
    result = _run("configs", "show", "quick", "--out", str(out))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {out} already exists; choose a new file name")
    assert out.read_text() == "mine\n"
    assert list(tmp_path.iterdir()) == [out]


def test_configs_show_out_into_a_missing_directory(tmp_path):
    out = tmp_path / "missing" / "mine.yaml"
    result = _run("configs", "show", "quick", "--out", str(out))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Cannot write {out}: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["show", "nope"], ["show", "nope", "--out", "x.yaml"]])
def test_configs_show_unknown_name_lists_the_shipped_ones(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run("configs", *args)
    assert result.exit_code == 1
    names = ", ".join(NAMES)
    assert result.output == (
        f"Error: 'nope' is not a shipped config; the shipped configs are {names} "
        "(svmtrain configs list).\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_fit_with_an_unknown_config_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run("fit", "-c", "defualt")
    assert result.exit_code == 1
    names = ", ".join(NAMES)
    assert result.output == (
        "Error: Config file defualt does not exist; pass the path of a YAML file or the name of "
        f"a shipped config: {names}. Did you mean 'default'?\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_data_sets(tiny_archive, http_server, tmp_path):
    """--set options that train on a tiny cached archive (250 train, 50 test), briefly."""
    archive = tiny_archive(train_counts=(60,) * 5, test_count=50)
    data_dir = tmp_path / "data"
    with http_server(archive.body) as server:
        load_cifar10(data_dir, url=server.url, sha256=archive.sha256, progress=False)
    settings = [
        f"data.dir={data_dir}",
        f"data.sha256={archive.sha256}",
        "data.val_size=50",
        "data.num_train=null",
        "train.train_acc_samples=50",
        "train.batch_size=32",
        "train.epochs=1",
        "train.iterations=null",
        f"output.dir={tmp_path / 'runs'}",
    ]
    return [arg for s in settings for arg in ("--set", s)]


def test_run_directories_are_named_after_their_config(tiny_data_sets, tmp_path):
    """The built-in defaults ('notes'), a shipped config and a file of one's own that sets no
    output.name each write a run directory of their own name."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("optim:\n  learning_rate: 1e-6\n")
    for config, name in [
        ([], "notes"),
        (["-c", "default"], "default"),
        (["-c", str(mine)], "mine"),
    ]:
        result = _run("fit", *config, *tiny_data_sets, "-q")
        assert result.exit_code == 0, result.output
        (run_dir,) = (p for p in (tmp_path / "runs").iterdir() if p.name.endswith(f"-{name}"))
        assert result.output.endswith(f"-> {run_dir}\n")
        assert load_config(run_dir / "config.yaml").output.name == name
    assert len(list((tmp_path / "runs").iterdir())) == 3


def _commands(group, path=()):
    """Every command path under ``group``, groups included: (), ("data",), ("data", "info")..."""
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


COMMAND_PATHS = list(_commands(main))


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "svmtrain")
def test_every_help_lists_its_commands_untruncated(path):
    result = _run(*path, "--help")
    assert result.exit_code == 0
    listing = result.output.partition("\nCommands:\n")[2]
    cut = [line for line in listing.splitlines() if line.endswith("...")]
    assert not cut, cut


@pytest.mark.parametrize(
    "path",
    [p for p in COMMAND_PATHS if p and "--config" in _run(*p, "--help").output],
    ids=" ".join,
)
def test_every_config_option_names_the_shipped_configs(path):
    help_text = " ".join(_run(*path, "--help").output.split())
    for name in (p.stem for p in SHIPPED):
        assert f" {name}," in help_text or f" {name}." in help_text, name


# --- the edge: a standard output that cannot be written, Ctrl-C while starting ---------------


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_full_standard_output_is_one_line_not_a_traceback(unbuffered):
    env = {**__import__("os").environ, "PYTHONUNBUFFERED": unbuffered}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "svmtrain", "configs", "show", "quick"],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "Cannot write to standard output: No space left on device.\n"


def test_a_closed_pipe_ends_quietly():
    """``svmtrain configs show default | head -0``: exit 141 (128 + SIGPIPE), nothing said."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "svmtrain", "configs", "show", "default"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    proc.stdout.close()  # the reader is gone before the first byte is written
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""


def test_ctrl_c_while_starting_up_is_interrupted_without_a_traceback(monkeypatch, capsys):
    import builtins

    from svmtrain.__main__ import run

    real_import = builtins.__import__

    def interrupted_import(name, *args, **kwargs):
        if name == "svmtrain.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    with pytest.raises(SystemExit) as stopped:
        run()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "Interrupted.\n"


def test_a_local_file_named_like_a_shipped_config_wins_with_a_note(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("quick").write_text("optim:\n  learning_rate: 0.5\n")
    result = CliRunner().invoke(main, ["fit", "-c", "quick", "--set", "train.batch_size=0"])
    assert result.exit_code == 1  # the file's config was read (and its bad override refused)
    assert "Note: using the file ./quick, not the shipped config 'quick'" in result.stderr
    result = CliRunner().invoke(main, ["fit", "-c", "./quick", "--set", "train.batch_size=0"])
    assert "Note:" not in result.stderr  # a path is a path: nothing to note


def test_an_empty_config_file_is_refused_not_run_as_the_defaults(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = CliRunner().invoke(main, ["fit", "-c", str(empty), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert f"{empty} holds no settings" in result.output
    assert "-c notes" in result.output
    assert not (tmp_path / "run").exists()
    # /dev/null reads as empty too, but a device is no config file (/dev/zero never ends)
    result = CliRunner().invoke(main, ["fit", "-c", "/dev/null", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "Config file /dev/null is not a regular file (it is a device)" in result.output

"""What a search tries: the searched axes, grid or random settings, and each trial's configs.

A trial is the base config with some keys set, e.g. optim.learning_rate=1e-6 and
model.reg=2.5e4.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from svmtrain.config import Config, config_to_dict, key_type, load_config
from svmtrain.errors import ArgumentError, ConfigError
from svmtrain.experiments.train import optimizer

LR, REG = "optim.learning_rate", "model.reg"

# Keys a --epochs override would fight with.
_LENGTH_KEYS = ("train.epochs", "train.iterations")
# Sections a trial cannot change: the data are prepared once, and trials write no run directory.
_DATA_SECTIONS = ("data", "preprocess", "output")
_DEFAULTS = config_to_dict(Config())
_SIGNIFICANT = 3  # digits kept of a randomly sampled value: enough to tell trials apart


@dataclass(frozen=True)
class Axis:
    """One searched config key: listed values, or a log-uniform range (random samples only).

    ``values`` are kept as written and read like ``--set`` values (YAML), so "1e-6" is a float
    and "null" is None; the config's own rules check them.
    """

    key: str  # "section.key"
    values: tuple[str, ...] = ()
    low: float | None = None  # a range: LOW:HIGH, 0 < LOW < HIGH
    high: float | None = None

    @property
    def is_range(self) -> bool:
        return self.low is not None


def parse_axis(key: str, spec: str, option: str, given: str | None = None) -> Axis:
    """The axis ``option`` describes for config ``key``: "V1,V2,..." or "LOW:HIGH".

    ``option`` (e.g. "--lr" or "--grid") and ``given``, the option's value as written
    [default: spec], name the source in messages. A range is two numbers separated by ':',
    both > 0, for an int or float key. Raises ArgumentError on anything else.
    """
    kind = _key_type(key, option)
    where = f"{option} {spec if given is None else given!r}"
    bounds = _as_range(spec)
    if bounds is not None:
        low, high = bounds
        if kind not in (int, float):
            raise ArgumentError(
                (), f"{where}: {key} is not a number, so it cannot be a range; list values."
            )
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
            raise ArgumentError(
                (),
                f"{where}: a range LOW:HIGH needs finite 0 < LOW < HIGH (it is sampled "
                "log-uniformly), e.g. 1e-7:1e-5.",
            )
        return Axis(key, low=low, high=high)
    values = tuple(v.strip() for v in spec.split(","))
    if any(v == "" for v in values):
        raise ArgumentError(
            (), f"{where} has an empty value; separate values with commas, e.g. 1e-7,1e-6."
        )
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ArgumentError((), f"{where} lists {repeated[0]} twice; list each value once.")
    return Axis(key, values=values)


def parse_grid_option(text: str) -> Axis:
    """``--grid KEY=V1,V2,...`` (or KEY=LOW:HIGH with --random) as an :class:`Axis`."""
    key, sep, spec = text.partition("=")
    if not sep or not key.strip():
        raise ArgumentError(
            (), f"--grid {text!r}: expected KEY=V1,V2,..., e.g. --grid train.batch_size=128,256."
        )
    return parse_axis(key.strip(), spec, "--grid", given=text)


def _as_range(spec: str) -> tuple[float, float] | None:
    """(low, high) if spec is "LOW:HIGH" with two numbers; None for a list of values."""
    parts = spec.split(":")
    if len(parts) != 2 or "," in spec:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


def _key_type(key: str, option: str) -> type:
    """The type (int, float, bool, str) of config key "section.key"; ArgumentError if none."""
    section, _, name = key.partition(".")
    if section not in _DEFAULTS:
        close = difflib.get_close_matches(section, list(_DEFAULTS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the sections: {', '.join(_DEFAULTS)}."
        raise ArgumentError((), f"{option}: {key!r} is not a config key (section.key); {hint}")
    if name not in _DEFAULTS[section]:
        close = difflib.get_close_matches(name, list(_DEFAULTS[section]), n=1)
        hint = (
            f"did you mean '{section}.{close[0]}'?"
            if close
            else f"the keys of {section}: {', '.join(_DEFAULTS[section])}."
        )
        raise ArgumentError((), f"{option}: {key!r} is not a config key; {hint}")
    return key_type(key)


def check_axes(
    axes: Sequence[Axis], *, random: bool, epochs: int | None, halving: bool = False
) -> None:
    """Reject a search that cannot run: no axes, a key twice, a range in a grid, random
    samples without a range (they would repeat grid points), --epochs or --halving together
    with a searched train.epochs or train.iterations. Raises ArgumentError."""
    if not axes:
        raise ArgumentError(
            (),
            "Nothing to search: give --lr, --reg or --grid KEY=V1,V2,..., "
            "e.g. --lr 1e-7,1e-6 --reg 2.5e4,5e4.",
        )
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise ArgumentError((), f"{key} is searched twice (--lr/--reg/--grid); give it once.")
    ranges = [a.key for a in axes if a.is_range]
    if ranges and not random:
        raise ArgumentError(
            (),
            f"{ranges[0]} is given a range LOW:HIGH, which only --random N samples; "
            "for a grid, list values, e.g. --lr 1e-7,1e-6.",
        )
    if random and not ranges:
        combos = math.prod(len(a.values) for a in axes)
        raise ArgumentError(
            (),
            f"--random samples ranges LOW:HIGH, but every searched key lists its values, so "
            f"samples would repeat the same {combos} combinations. Drop --random to try each "
            "once, or give a range, e.g. --lr 1e-7:1e-5.",
        )
    fixed = [k for k in keys if k.partition(".")[0] in _DATA_SECTIONS]
    if fixed:
        raise ArgumentError(
            (),
            f"{fixed[0]} cannot be searched: the data are loaded and preprocessed once for all "
            f"trials. Run one search per value instead, e.g. --set {fixed[0]}=...",
        )
    clash = [k for k in keys if k in _LENGTH_KEYS]
    if clash and epochs is not None:
        raise ArgumentError(
            (), f"--epochs sets the length of every trial; drop it or stop searching {clash[0]}."
        )
    if clash and halving:
        raise ArgumentError(
            (),
            f"--halving sets the length of every trial in each rung; drop it or stop searching "
            f"{clash[0]}.",
        )


def grid_settings(axes: Sequence[Axis]) -> list[dict[str, str]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    combos = itertools.product(*(a.values for a in axes))
    return [dict(zip((a.key for a in axes), combo, strict=True)) for combo in combos]


def random_settings(axes: Sequence[Axis], count: int, seed: int) -> list[dict[str, str]]:
    """``count`` samples: ranges log-uniform (rounded to 3 significant digits, ints to ints),
    listed values uniformly. The same seed gives the same samples."""
    rng = np.random.default_rng(seed)
    integral = {a.key: _key_type(a.key, "--random") is int for a in axes}
    samples = []
    for _ in range(count):
        sample = {}
        for a in axes:
            if a.is_range:
                value = 10.0 ** rng.uniform(math.log10(a.low), math.log10(a.high))
                sample[a.key] = (
                    str(round(value)) if integral[a.key] else f"{value:.{_SIGNIFICANT}g}"
                )
            else:
                sample[a.key] = a.values[int(rng.integers(len(a.values)))]
        samples.append(sample)
    return samples


@dataclass(frozen=True)
class Trial:
    """One short run: the searched keys' values, and the configs they make."""

    number: int  # 1-based, in the order the trials were generated
    settings: dict[str, str]  # searched key -> value as written
    config: Config  # what the trial trains: base config + settings (+ the --epochs override)
    full_config: Config  # base config + settings: best.yaml, should this trial win
    rung: int = 0  # successive halving: the rung this run of the trial belongs to


MAX_TRIALS = 1000  # more is likely a typo in a grid (90,000 trials): asked to confirm


def check_trial_count(count: int, confirmed: bool) -> None:
    """Refuse a search of more than MAX_TRIALS trials unless ``confirmed`` (--yes): raises
    ArgumentError (naming no argument) saying how many and how to go on."""
    if count > MAX_TRIALS and not confirmed:
        raise ArgumentError(
            (),
            f"The search has {count:,} trials, more than {MAX_TRIALS:,}: narrow --lr, --reg or "
            "--grid, or pass --yes to run them all.",
        )


def make_trials(
    config_path: str | os.PathLike | None,
    overrides: Sequence[str],
    settings: Sequence[dict[str, str]],
    epochs: int | None = None,
) -> list[Trial]:
    """Each trial's configs, every one loaded and validated as ``fit --config --set`` would.

    ``epochs``: train every trial for this many epochs (train.iterations cleared); the full
    config keeps the base config's length. Raises ConfigError naming the trial at fault.
    """
    length = [] if epochs is None else [f"train.epochs={epochs}", "train.iterations=null"]
    trials = []
    for number, setting in enumerate(settings, 1):
        items = [f"{key}={value}" for key, value in setting.items()]
        try:
            config = load_config(config_path, [*overrides, *length, *items])
            full = load_config(config_path, [*overrides, *items])
        except ConfigError as err:
            shown = ", ".join(i if len(i) <= 80 else i[:60] + "..." for i in items)
            raise ConfigError(f"Trial {number} ({shown}): {err}") from None
        trials.append(Trial(number, dict(setting), config, full))
    return trials


def check_trials(trials: Sequence[Trial], num_train: int) -> None:
    """Reject, before any training, a trial whose batch does not fit the training split."""
    for trial in trials:
        try:
            optimizer(trial.config).plan(num_train)
        except ConfigError as err:
            raise ConfigError(f"Trial {trial.number}: {err}") from None


@dataclass(frozen=True)
class Halving:
    """Successive halving: every trial runs ``min_epochs`` epochs (rung 0); the best
    1/``reduction_factor`` of them by validation accuracy run again ``reduction_factor`` times
    as long (rung 1, retrained from their seed), and so on up to the trials' full length."""

    reduction_factor: int = 3
    min_epochs: int = 1

    def rung_epochs(self, num_trials: int, max_epochs: int | None) -> list[int]:
        """Epochs of each rung: min_epochs * reduction_factor ** k, as many rungs as both the
        trials (one left at most) and ``max_epochs`` (the trials' length) allow. Raises
        ArgumentError unless there is room for two rungs."""
        eta, low = self.reduction_factor, self.min_epochs
        if max_epochs is None:
            raise ArgumentError(
                (),
                "--halving counts epochs, but the config sets train.iterations; give --epochs N "
                "(the length of the last rung).",
            )
        rungs = 1
        while low * eta**rungs <= max_epochs and eta**rungs <= num_trials:
            rungs += 1
        if rungs < 2:
            raise ArgumentError(
                (),
                f"--halving with --reduction-factor {eta} and --min-epochs {low} needs at least "
                f"{eta} trials (got {num_trials}) and trials of at least {low * eta} epochs "
                f"(got {max_epochs}; set --epochs).",
            )
        return [low * eta**k for k in range(rungs)]

    def survivors(self, count: int) -> int:
        """How many of ``count`` trials in a rung go on to the next: ceil(count / factor)."""
        return -(-count // self.reduction_factor)


def for_rung(trial: Trial, rung: int, epochs: int) -> Trial:
    """``trial`` as it runs in ``rung``: trained from its seed for ``epochs`` epochs."""
    train = dataclasses.replace(trial.config.train, epochs=epochs, iterations=None)
    return dataclasses.replace(
        trial, rung=rung, config=dataclasses.replace(trial.config, train=train)
    )

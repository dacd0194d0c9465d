"""The vocabulary keys are declared with: a default, a rule (what the value accepts) and a doc.

A settings dataclass (a config section, an extractor's settings) declares each key in one line,
``reg: float = key(2.5e4, at_least(0), "L2 strength: loss += reg * sum(W * W)")``, and
:func:`check_settings` turns a mapping into that dataclass or a ConfigError naming the key:
``features.kmeans.num_centroids must be an int >= 1. Got 0 instead.``. The type of a key and
whether null is allowed come from its annotation.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import operator
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

from svmtrain.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """What one key accepts beyond its annotated type.

    ``ok`` is called only with a value of the right type. ``wording`` completes
    "<key> must be ..."; ``{type}`` in it becomes "an int", "a float", "a string", ...
    """

    ok: Callable[[Any], bool] = lambda value: True
    wording: str = "{type}"
    choices: tuple[str, ...] = ()


_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def compare(op: str, bound: float) -> Rule:
    """Values ``op bound``, e.g. ``compare(">=", 1)``."""
    return Rule(lambda v: _COMPARE[op](v, bound), f"{{type}} {op} {bound}")


def between(low: float, high: float, brackets: str) -> Rule:
    """Values in an interval; ``brackets`` "[)" includes ``low`` and excludes ``high``."""
    low_op, high_op = (">=" if brackets[0] == "[" else ">"), ("<=" if brackets[1] == "]" else "<")
    return Rule(
        lambda v: _COMPARE[low_op](v, low) and _COMPARE[high_op](v, high),
        f"{{type}} in {brackets[0]}{low}, {high}{brackets[1]}",
    )


def one_of(*choices: str) -> Rule:
    return Rule(lambda v: v in choices, f"one of {', '.join(choices)}", choices)


HEX_DIGITS = {"sha256": 64, "md5": 32}  # the length of each digest, in hex digits


def is_hex_digest(value: str, algo: str) -> bool:
    """Whether ``value`` is a hex digest of the length ``algo`` ('sha256', 'md5') has, in
    upper or lower case: data.sha256/data.md5 here, the data code's --sha256/--md5 and stamps."""
    return re.fullmatch(f"[0-9a-fA-F]{{{HEX_DIGITS[algo]}}}", value) is not None


def hex_digest(algo: str) -> Rule:
    return Rule(lambda v: is_hex_digest(v, algo), f"{HEX_DIGITS[algo]} hex digits")


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an http(s) URL with a host: data.url here, the data code's
    SVMTRAIN_DATA_URL and --url alike."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


NAME_MAX = 255  # bytes in one name of a path, on every common file system


def is_path(value: str, name_max: int = NAME_MAX) -> bool:
    """Whether ``value`` can name a file: not empty, no NUL byte, no name in it (between the
    '/'s) longer than ``name_max`` bytes."""
    names = os.fsencode(value).split(b"/")
    return value != "" and "\0" not in value and all(len(n) <= name_max for n in names)


PATH = Rule(is_path, f"a non-empty string without NUL, at most {NAME_MAX} bytes between '/'s")
# A run's directory is <timestamp>-<output.name>: 16 bytes are the timestamp's.
RUN_NAME = Rule(
    lambda v: "/" not in v and is_path(v, NAME_MAX - 16),
    f"a non-empty string without '/' or NUL, at most {NAME_MAX - 16} bytes",
)
POSITIVE_INT = compare(">=", 1)
NON_EMPTY = Rule(lambda v: v != "", "a non-empty string")
BOOL = Rule(wording="true or false")


def key(default: Any, rule: Rule, doc: str) -> Any:
    """A key of a settings dataclass: its default, what it accepts and what it means."""
    return dataclasses.field(default=default, metadata={"rule": rule, "doc": doc})


def section(cls: type, doc: str) -> Any:
    """A key whose value is itself a settings dataclass ``cls`` (e.g. features.kmeans)."""
    return dataclasses.field(default_factory=cls, metadata={"doc": doc})


def settings(cls: type) -> type:
    """Make ``cls`` a settings dataclass; TypeError at once if a key lacks a rule or a doc
    (every key is declared with :func:`key` or :func:`section`)."""
    cls = dataclass(cls)
    for name, (kind, _, f) in keys_of(cls).items():
        if "doc" not in f.metadata or ("rule" not in f.metadata and not is_settings(kind)):
            raise TypeError(f"{cls.__name__}.{name} is not declared with key() or section()")
    return cls


def is_settings(cls: Any) -> bool:
    """Whether ``cls`` is a settings dataclass (its keys declared with :func:`key`)."""
    return isinstance(cls, type) and dataclasses.is_dataclass(cls)


def keys_of(cls: type) -> dict[str, tuple[type, bool, dataclasses.Field]]:
    """Key name -> (its type, whether null is allowed, its field), in declaration order."""
    hints = get_type_hints(cls, vars(sys.modules[cls.__module__]))
    found = {}
    for f in dataclasses.fields(cls):
        args = get_args(hints[f.name]) or (hints[f.name],)
        kind = next(t for t in args if t is not type(None))
        found[f.name] = (kind, type(None) in args, f)
    return found


CrossRules = tuple[tuple[Callable[[Any], bool], Callable[[Any], str]], ...]


def check_settings(cls: type, values: Any, path: str = "", where: str = "") -> Any:
    """``values`` (a mapping, or already a ``cls``) as a checked ``cls``: every key known and
    following its rule, ints given for floats made floats, nested settings checked alike,
    keys left out at their defaults, then the class's ``cross_rules`` (pairs of: is it
    broken?, the message saying how to fix it).

    ``path`` prefixes each key in messages ("features.kmeans"; "" for the whole config);
    ``where`` (the file or override at fault) prefixes messages about names and shapes.
    Raises ConfigError naming the first key at fault.
    """
    if isinstance(values, cls):
        values = {f.name: getattr(values, f.name) for f in dataclasses.fields(cls)}
    check_names(cls, values, path, where)
    checked = {}
    for name, value in values.items():
        kind, nullable, f = keys_of(cls)[name]
        dotted = f"{path}.{name}" if path else name
        if is_settings(kind):
            checked[name] = check_settings(kind, {} if value is None else value, dotted, where)
        else:
            checked[name] = check_value(dotted, value, kind, nullable, f.metadata["rule"])
    result = cls(**checked)
    for broken, message in getattr(cls, "cross_rules", ()):
        if broken(result):
            raise ConfigError(message(result))
    return result


def check_names(cls: type, values: Any, path: str = "", where: str = "") -> None:
    """Reject, in ``values`` and the settings nested in it, a mapping that is not one and a
    key ``cls`` does not declare (with the closest name); the values are not checked."""
    declared = keys_of(cls)
    if not isinstance(values, Mapping):
        listed = ", ".join(declared)
        what = (
            f"{path} must be a mapping of its keys ({listed}) to values"
            if path
            else f"the top level must be a mapping of sections ({listed}) to their keys"
        )
        raise ConfigError(f"{where}{what}. Got {kind_of(values)} instead.")
    for name, value in values.items():
        check_name(name, declared, f"a key of {path}" if path else "a section of the config", where)
        kind = declared[name][0]
        if is_settings(kind) and value is not None and not isinstance(value, kind):
            check_names(kind, value, f"{path}.{name}" if path else name, where)


def check_name(name: Any, valid: Mapping | list, what: str, where: str = "") -> None:
    """Nothing if ``name`` is in ``valid``; else a ConfigError with the closest name."""
    if name in valid:
        return
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(valid)}."
    raise ConfigError(f"{where}{str(name)!r} is not {what}; {hint}")


_TYPE_WORDS = {int: "an int", float: "a float", bool: "a bool", str: "a string"}


def check_value(path: str, value: Any, kind: type, nullable: bool, rule: Rule) -> Any:
    """The value as a plain ``kind``; ConfigError naming ``path`` if it breaks ``rule``."""
    if value is None and nullable:
        return None
    converted = _as_type(value, kind)
    if converted is not None and rule.ok(converted):
        return converted
    if converted is not None:
        shown = show(converted)
    elif value is None or kind_of(value) == _TYPE_WORDS[kind]:  # null, or a float not finite
        shown = show(value)
    else:
        shown = f"{show(value)} ({kind_of(value)})"
    close = difflib.get_close_matches(str(value)[:100], rule.choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    expected = rule.wording.format(type=_TYPE_WORDS[kind])
    raise ConfigError(
        f"{path} must be {'null or ' if nullable else ''}{expected}. Got {shown} instead{hint}"
    )


def _as_type(value: Any, kind: type) -> Any:
    """``value`` as a plain ``kind`` if it is one (an int is a float), else None.

    bool is a subclass of int in Python, but ``batch_size: true`` is a mistake, not 1.
    Non-finite floats are refused: no setting means anything at inf or nan.
    """
    if isinstance(value, bool) or kind is bool:
        return value if isinstance(value, bool) and kind is bool else None
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) else None
    if kind is float:
        if not isinstance(value, numbers.Real):
            return None
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            return None
        return number if math.isfinite(number) else None
    return value if isinstance(value, kind) else None


def show(value: Any) -> str:
    """A value as the user wrote it in YAML (true, null), cut short if long."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int) and abs(value) >= 10**60:
        return f"an int of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind_of(value: Any) -> str:
    """'a mapping', 'a list', 'null', 'an int', ...: what ``value`` is, in words."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return _TYPE_WORDS.get(type(value), f"a {type(value).__name__}")

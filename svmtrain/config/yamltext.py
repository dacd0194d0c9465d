"""Config YAML: read as YAML 1.2 reads numbers, with duplicate keys refused; written back so.

:func:`parse_yaml` turns text into plain Python values, or a ConfigError that names where
the text came from and the line and column at fault; :func:`dump_yaml` writes values back
so that :func:`parse_yaml` reads them as equal.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml

from svmtrain.config.keys import is_settings, keys_of
from svmtrain.errors import ConfigError
from svmtrain.fileio import MAX_NESTING

_MAX_INT_DIGITS = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300


class _Refused(yaml.YAMLError):
    """YAML that is valid but refused; ``message`` says so with ``{at}`` where the place goes."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load`` with fixes: floats like ``1e-3``, duplicate keys, aliases, bounds.

    PyYAML follows YAML 1.1, where ``1e-3`` and ``1.5e3`` are strings (a float needs a dot and a
    signed exponent); a learning rate is written that way, so it must be a float as in YAML 1.2.
    A key given twice would silently lose its first value, so it is an error instead.
    Anchors and aliases are refused: a config has no use for them, and a few hundred bytes of
    nested aliases expand to billions of values (an "alias bomb") that hang whatever prints or
    copies them. Values nested deeper than MAX_NESTING (a config nests three levels) and
    integers longer than Python reads from text are refused too, where they are met.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise _Refused(
                "YAML anchors and aliases are not allowed in a config; found "
                f"{sign + event.anchor!r} {{at}}. Write each value out in full.",
                event.start_mark,
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_NESTING:
                raise _Refused(
                    f"values nested more than {MAX_NESTING} levels deep {{at}}; a config nests "
                    "three (section, key, setting).",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node):
        digits = sum(c.isdigit() for c in node.value)
        if digits > _MAX_INT_DIGITS:
            raise _Refused(
                f"the number {{at}} has {digits} digits; no setting needs more than a few.",
                node.start_mark,
            )
        return super().construct_yaml_int(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"found the key {key!r} twice",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


class _Dumper(yaml.SafeDumper):
    """Quotes the strings that :class:`_Loader` would read as floats (a name "1e5")."""


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )


def parse_yaml(text: str, where: str) -> Any:
    """The values in YAML ``text``; ConfigError naming ``where``, the line and the column if it
    is not valid YAML."""
    try:
        return yaml.load(text, Loader=_Loader)
    except _Refused as err:
        at = f"at line {err.mark.line + 1}, column {err.mark.column + 1}"
        raise ConfigError(f"{where}: {err.message.format(at=at)}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}.") from None


def dump_yaml(data: Any) -> str:
    """``data`` (plain values) as YAML text, in the order given, that :func:`parse_yaml` reads
    back as equal."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False)


def explained_yaml(settings: Any, indent: str = "") -> str:
    """The settings dataclass ``settings`` (e.g. a Config) as YAML, every key on a line of its
    own with what it means beside it (the doc it is declared with, after the choices if it
    has a list of them), nested settings indented
    below their key, a blank line between top-level sections. :func:`parse_yaml` reads it back
    as the same values."""
    lines: list[tuple[str, str | None]] = []  # (YAML, its comment)
    for name, (kind, _, f) in keys_of(type(settings)).items():
        value = getattr(settings, name)
        if is_settings(kind):
            lines.append((f"{indent}{name}:", f.metadata["doc"]))
            lines.append((explained_yaml(value, indent + "  ").rstrip("\n"), None))
            if not indent:
                lines.append(("", None))
        else:
            choices = f.metadata["rule"].choices
            doc = f"{' | '.join(choices)} ({f.metadata['doc']})" if choices else f.metadata["doc"]
            lines.append((indent + dump_yaml({name: value}).rstrip("\n"), doc))
    width = max(len(text) for text, doc in lines if doc is not None)
    text = "\n".join(
        line if doc is None else f"{line.ljust(width)}  # {doc}" for line, doc in lines
    )
    return text.rstrip("\n") + "\n"

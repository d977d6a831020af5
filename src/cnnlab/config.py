"""Configs: small typed dataclasses, composed per command; one grammar for YAML, flags and Python.

A command's config is a dataclass whose fields are values or other dataclasses (its parts: ``run``,
``hardware``, ``optim``, ``data``, ...). A **key** is the dotted path to a value: ``optim.lr``,
``data.limit_train``, ``hardware.strategy``. The same keys work everywhere:

- YAML: nested mappings (``optim: {lr: 0.1}``) or dotted keys (``optim.lr: 0.1``);
- the command line: ``--optim.lr 0.1`` (dashes or underscores; lists as ``8,16`` or ``[8, 16]``;
  booleans as ``--flip`` / ``--no-flip`` / ``--flip false``; a mapping's entries as ``--model.widths [32,64]``);
- Python: ``build(CifarConfig, {"optim.lr": 0.1})`` or ``build(CifarConfig, lr=0.1)``.

A key's last part alone is a **shorthand** when no other key of the same config ends in it (``lr`` for
``optim.lr``), except the names in ``NO_SHORTHAND``; a config class may declare more in ``ALIASES``
(names of earlier versions). An unknown key is a ``ConfigError`` with a "did you mean".

Type checks and conversion are jsonargparse's (the parser behind LightningCLI), fed from the dataclasses;
each field's ``help`` (see ``field``) is its ``--help`` text. Importing this module imports no torch, so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cnnlab.errors import ConfigError
from cnnlab.registry import did_you_mean  # noqa: F401  (re-exported for config users)

T = TypeVar("T")

# ``strategy`` is the transfer strategy in Food-101 commands: Lightning's is always ``hardware.strategy``,
# so ``--strategy`` never means two things.
NO_SHORTHAND = frozenset({"strategy"})
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def field(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with its help text; lists, dicts and dataclass parts get a default_factory."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    if dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: dataclasses.replace(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


# ---- the keys of a config class ------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One settable value of a config: its dotted key, type, default and help text."""

    key: str
    type: Any
    default: Any
    help: str

    @property
    def is_bool(self) -> bool:
        return self.type is bool

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.type) in (list, tuple)

    @property
    def is_mapping(self) -> bool:
        return self.type is dict or typing.get_origin(self.type) is dict

    @property
    def takes_none(self) -> bool:
        """``X | None``, ``Optional[X]`` or ``Literal[..., None]``: a key that null may set."""
        args = typing.get_args(self.type)
        if typing.get_origin(self.type) is typing.Literal:
            return None in args
        return self.type is type(None) or type(None) in args


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _attribute(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


@functools.cache
def leaves(cls: type) -> dict[str, Leaf]:
    """Every value of ``cls`` by dotted key, parts walked in field order. A part's defaults are the ones
    ``cls`` gives it (``optim: ClassifierOptim = field(ClassifierOptim(epochs=20), ...)`` defaults to 20)."""
    out: dict[str, Leaf] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            part = _default(f)
            for k, v in leaves(kind).items():
                default = _attribute(part, k) if part is not dataclasses.MISSING else v.default
                out[f"{f.name}.{k}"] = dataclasses.replace(v, key=f"{f.name}.{k}", default=default)
        else:
            out[f.name] = Leaf(f.name, kind, _default(f), f.metadata.get("help", ""))
    return out


@functools.cache
def parts(cls: type) -> frozenset[str]:
    """The dotted keys of ``cls``'s nested parts (``optim``, ``data``, ...)."""
    pieces = [key.split(".") for key in leaves(cls)]
    return frozenset(".".join(p[:i]) for p in pieces for i in range(1, len(p)))


@functools.cache
def shorthands(cls: type) -> dict[str, str]:
    """Bare names that stand for a nested key (``lr`` -> ``optim.lr``), plus ``cls.ALIASES``."""
    by_name: dict[str, list[str]] = {}
    for key in leaves(cls):
        by_name.setdefault(key.rsplit(".", 1)[-1], []).append(key)
    out = {name: keys[0] for name, keys in by_name.items()
           if len(keys) == 1 and "." in keys[0] and name not in NO_SHORTHAND}
    out.update(getattr(cls, "ALIASES", {}))
    return out


def canonical(cls: type, key: str) -> str:
    """The dotted key that ``key`` (any spelling: dashes, shorthand, alias) names in ``cls``.

    Raises:
        ConfigError: no such key, with the closest known one.
    """
    key = key.strip().replace("-", "_")
    known = leaves(cls)
    if key in known or key in parts(cls):
        return key
    if key in shorthands(cls):
        return shorthands(cls)[key]
    head, _, rest = key.partition(".")
    if rest:
        head = canonical(cls, head) if head not in parts(cls) else head
        if head in known and known[head].is_mapping:
            return f"{head}.{rest}"  # an entry of a mapping (e.g. an architecture option)
        if head in parts(cls):
            inner = f"{head}.{rest}"
            if inner in known or inner in parts(cls):
                return inner
    names = list(known) + list(shorthands(cls))
    raise ConfigError(f"unknown config key {key!r}{did_you_mean(key, names)}")


def flatten(cls: type, data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``data`` (nested mappings, dotted keys or shorthands) as {dotted key: value} for ``cls``; an entry
    of a mapping value (``model.widths``) becomes a one-entry mapping (``model: {widths: ...}``).

    Raises:
        ConfigError: an unknown key, or a part given something other than a mapping.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    out: dict[str, Any] = {}
    known = leaves(cls)
    for raw, value in data.items():
        key = canonical(cls, prefix + str(raw)) if prefix else canonical(cls, str(raw))
        if key in parts(cls):
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: a part of the config takes a mapping of its keys, got {value!r} "
                                  f"(e.g. --{key}.<key> VALUE)")
            out = merge(cls, out, flatten(cls, value, prefix=key + "."))
        elif key in known:
            out = merge(cls, out, {key: value})
        else:  # "model.widths": one entry of the mapping ``model``
            head, _, entry = key.partition(".")
            while head not in known:
                more, _, entry = entry.partition(".")
                head = f"{head}.{more}"
            out = merge(cls, out, {head: {entry: value}})
    return out


def merge(cls: type, *layers: dict[str, Any]) -> dict[str, Any]:
    """Flat layers of keys (from ``flatten``), later ones winning; mapping values merge entry by entry,
    so ``--model.widths`` on top of a preset's ``model: {stem: 16}`` keeps the stem."""
    known = leaves(cls)
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            leaf = known.get(key)
            if leaf is not None and leaf.is_mapping and isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out


def retired(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the top-level keys ``cls.RETIRED`` lists: keys that run folders written by
    earlier versions hold but that no longer mean anything (read recorded configs through this)."""
    gone = set(getattr(cls, "RETIRED", ()))
    return {k: v for k, v in data.items() if k not in gone}


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"optim.lr": 0.1} -> {"optim": {"lr": 0.1}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


# ---- parsing and building, through jsonargparse ---------------------------------------------------


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _help_text(leaf: Leaf) -> str:
    """The field's help and its default; an empty default says nothing (the help says what is derived)."""
    if leaf.default in ("", None, {}, []) or leaf.default is dataclasses.MISSING:
        return leaf.help
    return f"{leaf.help} (default: {_shown(leaf.default)})"


@functools.cache
def parser(cls: type) -> Any:
    """jsonargparse's parser of ``cls``; each option shows its help, its default and its shorthand."""
    from jsonargparse import ArgumentParser

    p = ArgumentParser(exit_on_error=False, add_help=False, formatter_class=_formatter())
    p.add_class_arguments(cls)
    short = {v: k for k, v in shorthands(cls).items()}
    known = leaves(cls)
    for action in p._actions:
        if action.dest in parts(cls) or action.dest not in known:
            action.help = argparse.SUPPRESS  # jsonargparse's per-part config files: one --config is enough
            continue
        leaf = known[action.dest]
        action.help = _help_text(leaf)
        shown = ["--" + (action.dest if "." in action.dest else action.dest.replace("_", "-"))]
        if action.dest in short:
            shown.append("--" + short[action.dest].replace("_", "-"))
        action.option_strings = shown
        if leaf.is_bool:
            action.metavar = "{true,false}"
        elif leaf.is_list:
            action.metavar = "A,B,..."
    return p


def _formatter() -> type:
    from jsonargparse import DefaultHelpFormatter

    class Formatter(DefaultHelpFormatter):
        """Each option's help as written (with its default): no type, no argparse expansion."""

        def _get_help_string(self, action):
            return (action.help or "").replace("%", "%%")

    return Formatter


EXPECTED = {"float": "a number", "int": "an integer", "bool": "true or false", "dict": "a mapping",
            "list": "a list", "str": "a string"}


def _jsonargparse_error(e: BaseException) -> ConfigError:
    """jsonargparse's message as one line in our words: ``optim.lr: expected a number, got 'fast'``."""
    text = " ".join(str(e).split()).replace('Parser key "', "").replace('":', ":", 1)
    found = re.match(r"^([\w.]+): Expected a (.+?)\. Got value: (.*)$", text)
    if not found:
        return ConfigError(text)
    key, kind, value = found.groups()
    literal = re.match(r"typing\.Literal\[(.*)\]$", kind)
    if literal:
        choices = [c.strip().strip("'") for c in literal.group(1).split(",")]
        return ConfigError(f"{key}: {value!r} is not one of {literal.group(1)}{did_you_mean(value, choices)}")
    simple = re.match(r"^<class '(\w+)'>$", kind)
    expected = EXPECTED.get(simple.group(1), f"a {simple.group(1)}") if simple else kind
    return ConfigError(f"{key}: expected {expected}, got {value!r}")


def build(cls: type[T], values: dict[str, Any] | None = None, **more: Any) -> T:
    """A ``cls`` from its defaults with ``values`` and ``more`` on top (any key spelling, see above).

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or a check of the config class failing.
    """
    flat = merge(cls, flatten(cls, values or {}), flatten(cls, more))
    try:
        namespace = parser(cls).parse_object(nest(_plain(cls, flat)))
    except (argparse.ArgumentError, ValueError, TypeError) as e:
        raise _jsonargparse_error(e) from None
    return _construct(cls, namespace.as_dict())


def _plain(cls: type, flat: dict[str, Any]) -> dict[str, Any]:
    """Values as jsonargparse takes them: tuples as lists, one value for a list key as a list of one, and
    numbers given to text keys as text (YAML reads ``devices: 2`` as a number where the command line gives
    the text "2"). ``ConfigError`` on null for a key whose type has no None."""
    known = leaves(cls)
    out = {}
    for key, value in flat.items():
        if isinstance(value, tuple):
            value = list(value)
        leaf = known.get(key)
        if value is None and leaf is not None and not leaf.takes_none:
            # jsonargparse lets null through for any type; YAML's empty value or ``null`` is a slip
            raise ConfigError(f"{key}: a value is needed (got null; delete the line to keep the default, "
                              f"{leaf.default!r})")
        if leaf is not None and leaf.is_list and not isinstance(value, list):
            value = [value]  # one value for a list key is a list of one, as 8 on the command line is [8]
        if leaf is not None and leaf.type is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        out[key] = value
    return out


def _construct(cls: type[T], data: dict[str, Any]) -> T:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        kwargs[f.name] = _construct(hints[f.name], value) if dataclasses.is_dataclass(hints[f.name]) else value
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """The config as nested plain data (what ``config.yaml`` holds)."""
    return dataclasses.asdict(config)


def flat_dict(config: Any) -> dict[str, Any]:
    """The config as {dotted key: value}."""
    return flatten(type(config), to_dict(config))


def replace(config: T, changes: dict[str, Any] | None = None, **more: Any) -> T:
    """A copy of ``config`` with ``changes`` (any key spelling), checked like any other value."""
    cls = type(config)
    return build(cls, merge(cls, flat_dict(config), flatten(cls, changes or {}), flatten(cls, more)))


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping at the top of a YAML file.

    Raises:
        ConfigError: missing file, invalid YAML, or something other than a mapping at the top.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder: expected a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return data


def load(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Defaults, then the YAML file at ``path`` (a run folder's config.yaml too: see ``retired``), then
    ``overrides``; an error in the file names the file.

    Raises:
        ConfigError: a missing or invalid file, an unknown key or a bad value (in the file or the overrides).
    """
    try:
        data = flatten(cls, retired(cls, read_yaml(path))) if path else {}
        build(cls, data)  # the file alone, so that its errors name it
    except ConfigError as e:
        raise ConfigError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") from None
    return build(cls, merge(cls, data, flatten(cls, overrides or {})))


def save(config: Any, path: str | Path) -> None:
    """Write ``config`` as YAML, atomically (a reader never sees half a file)."""
    from cnnlab import files

    files.write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))


# ---- the command line ----------------------------------------------------------------------------


def split_argv(argv: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """``--key value`` / ``--key=value`` / ``--flag`` tokens as (key, raw value or None), and positionals.
    Whether a bare ``--key`` takes the next token is decided later, by the key's type."""
    options: list[tuple[str, str | None]] = []
    positionals: list[str] = []
    tokens = list(argv)
    while tokens:
        token = tokens.pop(0)
        if token.startswith("--") and len(token) > 2:
            key, sep, value = token[2:].partition("=")
            options.append((key, value if sep else None))
            if not sep and tokens and not tokens[0].startswith("--"):
                options[-1] = (key, "\0" + tokens.pop(0))  # \0: taken from the next token, maybe not ours
        else:
            positionals.append(token)
    return options, positionals


def overrides_from_argv(cls: type, options: list[tuple[str, str | None]]) -> tuple[dict[str, Any], list[str]]:
    """The keys of ``cls`` set by ``options`` (from ``split_argv``), typed; and the tokens that were
    next to a boolean flag but are not its value (positionals).

    Raises:
        ConfigError: an unknown option (with a "did you mean"), a missing value or a wrong type.
    """
    known = leaves(cls)
    rewritten: list[str] = []
    spare: list[str] = []
    entries: list[dict[str, Any]] = []
    for raw, value in options:
        negated = False
        try:
            key = canonical(cls, raw)
        except ConfigError:
            if not raw.startswith("no-") and not raw.startswith("no_"):
                raise ConfigError(f"unknown option --{raw}{_suggest(cls, raw)}") from None
            negated, key = True, canonical(cls, raw[3:])
        leaf = known.get(key)
        taken = value is not None and value.startswith("\0")
        value = value[1:] if taken else value
        if leaf is not None and leaf.is_bool:
            if value is not None and value.lower() not in TRUE + FALSE:
                if not taken or not value.startswith(("/", ".", "~")) and "/" not in value:
                    raise ConfigError(f"--{raw}: expected true or false, got {value!r}")
                spare.append(value)  # a path after a bare flag: the positional RUN_DIR
                value = None
            truth = value is None or value.lower() in TRUE
            rewritten += [f"--{key}", "false" if truth == negated else "true"]
            continue
        if negated:
            raise ConfigError(f"unknown option --{raw}{_suggest(cls, raw)}")
        if value is None:
            raise ConfigError(f"--{raw}: expected a value")
        if key in parts(cls):
            raise ConfigError(f"--{raw}: {key} is a part of the config, not a value: set its keys "
                              f"(--{key}.<key> VALUE; `--help` lists them)")
        if leaf is None:  # an entry of a mapping (--model.widths 8,16): a YAML value, lists also as 8,16
            if "," in value and not value.lstrip().startswith(("[", "{", "'", '"')):
                value = "[" + value + "]"
            try:
                entries.append({key: yaml.safe_load(value)})
            except yaml.YAMLError:
                raise ConfigError(f"--{raw}: cannot read the value {value!r}") from None
            continue
        if leaf.is_list and not value.lstrip().startswith("["):
            value = "[" + value + "]"  # 8,16,32 as well as [8, 16, 32]
        rewritten += [f"--{key}", value]
    try:
        namespace = parser(cls).parse_args(rewritten, defaults=False)
    except (argparse.ArgumentError, ValueError, TypeError) as e:
        raise _jsonargparse_error(e) from None
    given = merge(cls, flatten(cls, namespace.as_dict()), *(flatten(cls, e) for e in entries))
    return given, spare


def flag_names(cls: type) -> list[str]:
    """Every option of ``cls`` as the help shows it: dotted keys as they are, bare names with dashes."""
    return [k if "." in k else k.replace("_", "-") for k in [*leaves(cls), *shorthands(cls)]]


def suggest_flag(raw: str, *classes: type) -> str:
    """' (did you mean --x?)' for an unknown option ``--raw`` among the options of ``classes``, else ''."""
    names = [n for cls in classes for n in flag_names(cls)]
    close = did_you_mean(raw if "." in raw else raw.replace("_", "-"), names)
    return close.replace("'", "--", 1).replace("'", "", 1) if close else ""


def _suggest(cls: type, raw: str) -> str:
    return suggest_flag(raw, cls)

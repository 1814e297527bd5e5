"""The command line of a run: ``--method``, ``--preset`` or ``--config``, then any config field.

Every field of ``TrainConfig`` is an option (``--lr 0.1`` or ``--lr=0.1``; ``--batch-size``
also reads as ``--batch_size``; a true/false field alone, ``--compile``, means true), and so is
every field of the method's parameters (``--params.lam`` or just ``--lam``). The parser is
argparse's, built for the method once it is known; strings are converted and checked by the
config (``set_value``), so the messages are the config's, with its "did you mean" hints.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, TrainConfig, _fields, apply_preset, config_from_dict, field_help, presets_for, set_value


class _Parser(argparse.ArgumentParser):
    """argparse that raises ``ConfigError`` instead of printing usage and exiting."""

    def error(self, message):
        raise ConfigError(message)


@dataclass
class TrainArgs:
    cfg: TrainConfig
    preset: str  # the preset's name, "config" for --config, "" for none
    resume: bool
    help: bool


def _spellings(name: str) -> list[str]:
    return [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])


def _add_fields(parser: argparse.ArgumentParser, obj, prefix: str, taken: set) -> None:
    for name, tp in _fields(obj).items():
        if name == "params":
            continue
        flags = _spellings(prefix + name)
        if prefix:  # method parameters also answer to their bare name when no shared field has it
            flags += [f for f in _spellings(name) if f.lstrip("-").replace("-", "_") not in taken]
        boolean = tp is bool
        parser.add_argument(*flags, dest=prefix + name, default=argparse.SUPPRESS, metavar="VALUE",
                            nargs="?" if boolean else None, const="true" if boolean else None)


def _known(cfg: TrainConfig) -> list[str]:
    names = [n for n in _fields(cfg) if n != "params"]
    return names + ([f"params.{n}" for n in _fields(cfg.params)] if cfg.params is not None else [])


def _unknown_option(cfg: TrainConfig, token: str) -> ConfigError:
    key = token.lstrip("-").split("=", 1)[0].replace("-", "_")
    close = difflib.get_close_matches(key, _known(cfg), n=3)
    hint = f" Did you mean {', '.join('--' + c for c in close)}?" if close else ""
    return ConfigError(f"unknown option --{key} for method {cfg.method!r}.{hint} "
                       f"`python -m sslkit.train --method={cfg.method} --help` lists them all.")


def _first_pass(argv: list[str]):
    pre = _Parser(add_help=False, allow_abbrev=False)
    pre.add_argument("-h", "--help", action="store_true")
    pre.add_argument("--method")
    pre.add_argument("--preset", default="")
    pre.add_argument("--config")
    pre.add_argument("--resume", nargs="?", const="true", default="false")
    return pre.parse_known_args(argv)


def _base_config(first) -> tuple[TrainConfig, str]:
    from .registry import get_method

    if first.config is not None:  # a stored run's config.json (e.g. a line of chapters/results/runs.jsonl)
        try:
            saved = json.loads(Path(first.config).expanduser().read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--config={first.config}: cannot read a config.json there ({exc})") from None
        try:
            cfg = config_from_dict(saved)
        except ConfigError as exc:
            raise ConfigError(f"--config={first.config}: {exc}") from None
        if first.method not in (None, cfg.method):
            raise ConfigError(f"--config={first.config} is a {cfg.method} run; leave --method out")
        cfg.output_dir = ""
        return cfg, "config"
    get_method(first.method)
    cfg = TrainConfig(method=first.method)
    if first.preset:
        apply_preset(cfg, first.preset)
    return cfg, first.preset


def parse_train_args(argv: list[str]) -> TrainArgs:
    """The config a command line asks for: method (or a stored config), preset, then overrides."""
    from .registry import method_names

    first, rest = _first_pass(argv)
    resume = str(first.resume).lower() in ("1", "true", "yes", "on")
    if first.method is None and first.config is None:
        if first.help:
            return TrainArgs(TrainConfig(method=""), "", resume, True)
        raise ConfigError(f"--method is required; one of {method_names()} "
                          "(`python -m sslkit.train --help` lists them with their presets)")
    cfg, preset = _base_config(first)
    parser = _Parser(add_help=False, allow_abbrev=False)
    taken = {n for n in _fields(cfg)}
    _add_fields(parser, cfg, "", set())
    if cfg.params is not None:
        _add_fields(parser, cfg.params, "params.", taken)
    values, unknown = parser.parse_known_args(rest)
    if unknown:
        raise _unknown_option(cfg, next((u for u in unknown if u.startswith("-")), unknown[0]))
    for key, value in vars(values).items():
        set_value(cfg, key, value)
    return TrainArgs(cfg, preset, resume, first.help)


def _option_lines(obj, skip=()) -> list[str]:
    """One line per dataclass field: --name, type, default and its declared meaning."""
    lines = []
    for name, tp in _fields(obj).items():
        if name in skip:
            continue
        tname = "|".join(map(str, typing.get_args(tp))) if typing.get_origin(tp) is typing.Literal \
            else getattr(tp, "__name__", str(tp))
        lines.append(f"  --{name:24s} {tname:6s} default {getattr(obj, name)!r:10s}  {field_help(obj, name)}".rstrip())
    return lines


def describe(cfg: TrainConfig) -> str:
    """Every option of ``cfg``'s method with its type, default and meaning, then its presets."""
    lines = ["options (--key value or --key=value):", *_option_lines(cfg, skip=("params",))]
    if cfg.params is not None:
        lines.append(f"method parameters of {cfg.method!r} (--params.KEY or --KEY):")
        lines += _option_lines(cfg.params)
    presets = presets_for(cfg.method)
    if presets:
        lines.append(f"presets of {cfg.method!r} (--preset=NAME):")
        for p in presets:
            lines.append(f"  {p.name:10s} {p.description or ''}\n  {'':10s} source: {p.source}")
    return "\n".join(lines)


def overview() -> str:
    """Every method with its presets, for ``--help`` without ``--method``."""
    from .registry import METHODS, load_plugins

    load_plugins()
    lines = ["methods (--method=NAME) and their presets (--preset=NAME); `--method=NAME --help` shows every option:"]
    for name, cls in METHODS.items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        lines.append(f"  {name:12s} {doc[0] if doc else ''}")
        for p in presets_for(name):
            lines.append(f"  {'':12s}   --preset={p.name:9s} {p.description or p.source}")
    return "\n".join(lines)

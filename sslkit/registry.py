"""The one list of methods: every ``Method`` subclass with a ``name`` registers itself here.

Nothing outside ``sslkit/methods/`` names a particular method: the config, the command
lines, the sweep, the results table and the benchmarks all read this registry. A method
defined outside the package registers the same way when its module is imported; to make
``python -m sslkit.train`` (and the processes it starts: the sweep's runs, ``torchrun``'s
workers) import it, name the module or file in the environment variable ``SSLKIT_PLUGINS``
(several separated by ``os.pathsep``), or publish it as an entry point of the group
``sslkit.methods`` in an installed package::

    SSLKIT_PLUGINS=my_lab/deepcluster_v2.py python -m sslkit.train --method=deepcluster_v2
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

METHODS: dict = {}  # name -> Method subclass, in the order they registered
PLUGINS_ENV = "SSLKIT_PLUGINS"
ENTRY_POINT_GROUP = "sslkit.methods"


def register(cls) -> None:
    """Add a method class under ``cls.name`` (a second class of the same name replaces the first,
    so a module imported twice, e.g. as a file and as a module, registers once)."""
    METHODS[cls.name] = cls


def get_method(name: str):
    """The method class called ``name``; a ``ConfigError`` listing the known ones otherwise."""
    from .config import ConfigError

    load_plugins()
    if name not in METHODS:
        hint = (f" (a method defined in your own module: name it in {PLUGINS_ENV}=path/to/module.py)"
                if METHODS else "")
        raise ConfigError(f"unknown method {name!r}; one of {method_names()}{hint}")
    return METHODS[name]


def method_names() -> list[str]:
    load_plugins()
    return list(METHODS)


_LOADED: set[str] = set()


def _import_plugin(spec: str) -> None:
    from .config import ConfigError

    path = Path(spec).expanduser()
    try:
        if spec.endswith(".py"):
            if not path.is_file():
                raise ConfigError(f"{PLUGINS_ENV}: no file {path}")
            if any(Path(getattr(m, "__file__", "") or "").resolve() == path.resolve() for m in list(sys.modules.values())
                   if getattr(m, "__file__", None)):
                return  # already imported (e.g. as a test module): its classes registered then
            name = "sslkit_plugin_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{PLUGINS_ENV}: importing {spec!r} failed ({type(exc).__name__}: {exc})") from exc


def load_plugins() -> None:
    """Import the built-in methods, then each module named in ``SSLKIT_PLUGINS`` and each entry
    point of the group ``sslkit.methods``, once per process."""
    import sslkit.methods  # noqa: F401  the built-in methods

    specs = [s for s in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if s.strip()]
    for spec in specs:
        if spec not in _LOADED:
            _LOADED.add(spec)
            _import_plugin(spec.strip())
    if "entry-points" not in _LOADED:
        _LOADED.add("entry-points")
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()

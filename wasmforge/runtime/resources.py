"""Plugins shipped inside a Python package: :func:`load_resource` reads one through importlib.resources.

A wheel (or a zip on ``sys.path``) holds the .wasm as package data
(``wasmforge build --out-dir mypkg/plugins``); importlib.resources reads it
wherever the package is installed, zipped or not. The module is compiled
through the compiled-module cache keyed by its sha256, so loading the same
bytes again in a process (or after a restart, from the on-disk cache) does
not compile them again.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from typing import Any

from ..abi.wasmfile import check_module_size
from ..errors import PluginLoadError
from .pickling import compiled_content
from .plugin import Plugin, check_sha256, plugin_options


def load_resource(package: str, resource: str, **options: Any) -> Plugin:
    """Loads the plugin ``resource`` (a path inside ``package``, such as "plugins/shout.wasm").

    ``options`` are :func:`wasmforge.load`'s (host_functions, timeout, sha256, instances, ...).
    PluginLoadError when the package cannot be imported or has no such file.
    """
    chosen = plugin_options({k: v for k, v in options.items() if k != "sha256"})
    limits = chosen.pop("limits")
    try:
        file = importlib.resources.files(package).joinpath(*resource.split("/"))
    except (ImportError, TypeError, ValueError) as error:
        raise PluginLoadError(f"cannot load {resource!r} from package {package!r}: {error}") from error
    try:
        data = file.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
        raise PluginLoadError(f"package {package!r} has no file {resource!r}; was it included as package data "
                              "(wasmforge build --out-dir, then the wheel's include)?") from error
    except OSError as error:
        raise PluginLoadError(f"cannot read {resource!r} from package {package!r}: {error.strerror or error}") \
            from error
    name = resource.rsplit("/", 1)[-1]
    check_module_size(data, limits.max_module_size, name)
    if options.get("sha256") is not None:
        check_sha256(data, options["sha256"], name)
    sha256 = hashlib.sha256(data).hexdigest()
    return Plugin(compiled_content(data, sha256, name, limits), name=name, limits=limits, data=data, **chosen)

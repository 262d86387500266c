"""What a loaded plugin is, whatever holds its instances: one object, made once per load.

A :class:`LoadedPlugin` is the compiled module (with its engine and what its
metadata says), how each of its imports is satisfied, its limits and its
name. Instances are made from it (instance.py), the holder of its instances
keeps them (instances.py), and its functions' call paths are built from it
(function.py); each gets it as an argument, as wasmtime-py's ``Func`` gets
its store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import wasmtime

from ..abi.pytypes import RecordedType, typed_dicts
from ..abi.signature import Signature
from ..limits import Limits
from .compiled import Compiled
from .imports import ImportPlan
from .wasi import OutputSink


@dataclass(frozen=True, eq=False)
class LoadedPlugin:
    """A compiled module, its import plan, its limits and its name: everything but its instances."""

    name: str
    compiled: Compiled
    imports: ImportPlan
    limits: Limits
    path: Optional[Path] = None
    #: A TypedDict per #[plugin_type] struct, the annotations of the functions' signatures.
    python_types: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def prepare(
        cls,
        compiled: Compiled,
        name: str,
        limits: Limits,
        host_functions: Mapping[str, Callable[..., Any]],
        stdout: OutputSink = None,
        stderr: OutputSink = None,
        path: Optional[Path] = None,
    ) -> "LoadedPlugin":
        """Works out how each import is satisfied; PluginLoadError when some cannot be."""
        imports = ImportPlan.build(
            compiled.imports, name, compiled.metadata.imports, host_functions, stdout, stderr,
            compiled.main_memory, limits.max_output,
        )
        python_types: Mapping[str, Any] = {}
        if compiled.metadata.types:
            # Made once per content and name (about 15 µs for a few structs), as its metadata is read once.
            key = ("python_types", name)
            python_types = compiled.shared.get(key) or compiled.shared.setdefault(
                key, typed_dicts(compiled.metadata.types, Path(name).stem))
        return cls(name=name, compiled=compiled, imports=imports, limits=limits, path=path, python_types=python_types)

    @property
    def engine(self) -> wasmtime.Engine:
        return self.compiled.engine

    @property
    def module(self) -> wasmtime.Module:
        return self.compiled.module

    @property
    def signatures(self) -> Mapping[str, Signature]:
        """Every callable export: name -> signature."""
        return self.compiled.signatures

    @property
    def types(self) -> Mapping[str, RecordedType]:
        """The structs and enums the plugin marked #[plugin_type], by name."""
        return self.compiled.metadata.types

    @property
    def guarded(self) -> bool:
        """Whether calls need more than the lean path: limits to arm, or output to forward."""
        return self.limits.uses_epochs or self.limits.fuel is not None or self.imports.captures_output

    def unknown_function(self, name: str) -> str:
        """The message for a call of a function the plugin does not have."""
        known = ", ".join(sorted(self.signatures)) or "none"
        return f"{self.name} has no function {name!r}; its functions: {known}"

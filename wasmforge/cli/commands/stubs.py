"""`wasmforge stubs`: a typed .pyi per plugin (a class of typed methods, a TypedDict per recorded type)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import EXIT_OK, UsageError
from ..output import Output
from ..plugins import build_flag_given, existing_file, plugin_paths


def run(args: argparse.Namespace, out: Output) -> int:
    from ...abi.stubs import module_name
    from ...runtime.inspection import typed_description
    from ...workspace.stubs import write_stubs

    if args.plugins:
        for flag, given in build_flag_given(args):
            if given:
                raise UsageError(f"PLUGIN names the .wasm files; {flag} chooses what to build in a workspace: "
                                 "use one or the other")
    paths = [existing_file(args, given, "plugin") for given in args.plugins] or plugin_paths(args, out)[0]
    modules: dict[str, Path] = {}
    for path in paths:
        module = module_name(path.name)
        if module in modules:
            raise UsageError(f"{modules[module]} and {path} would both be stubs/{module}.pyi; write them one at a time "
                             "with different -o DIRs")
        modules[module] = path
    directory = Path(args.out_dir) if Path(args.out_dir).is_absolute() else args.cwd / args.out_dir
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"-o {args.out_dir} is not a directory; name a directory for the .pyi files")
    for path in paths:
        exports, types = typed_description(path)
        written, changed = write_stubs(directory, path.name, exports, types)
        out.result(f"{'wrote' if changed else 'unchanged'} {written}")
    return EXIT_OK

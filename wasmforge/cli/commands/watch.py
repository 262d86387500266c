"""`wasmforge watch`: serve the plugin, and on every save rebuild, check and hot-swap it."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any, Optional

from ...errors import EXIT_INTERRUPTED, EXIT_OK
from ..output import Output, stderr_fd
from ..plugins import command_workspace, host_options


def run(args: argparse.Namespace, out: Output) -> int:
    """Serves the plugin and rebuilds and reloads it on every save until Ctrl-C or SIGTERM.

    However it is stopped (while starting, building or idle; SIGINT or SIGTERM, once or again while
    stopping), it ends the same way: cargo killed, "stopped watching", exit 130.
    """
    hot: Any = None
    printers: list[Any] = []
    stopping = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        # The first SIGINT or SIGTERM stops watching; more while it stops are ignored, so that
        # killing cargo always runs to its end.
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # `watch &` from a script: SIGINT stays ignored
                previous[signum] = signal.signal(signum, interrupt)
    try:
        # Everything inside: importing wasmtime alone takes a few hundred ms, and Ctrl-C then is Ctrl-C too.
        from ..watch_output import CliCall, WatchPrinter
        from ...devloop.hot import HotPlugin
        from ...errors import UsageError

        if args.clear and args.json:
            raise UsageError("--clear clears the screen between the lines of text output; --json prints events: use one")
        if args.exec is not None and len(args.exec) > 1:
            raise UsageError("give --exec once; to run several commands, join them: --exec 'cmd1 && cmd2'")
        if args.exec is not None and not args.exec[0].strip():
            raise UsageError("--exec needs a command, e.g. --exec 'pytest -q'")
        settings = command_workspace(
            args, debounce_ms=args.debounce, poll=args.poll or None,
            timeout=args.timeout, memory_limit=args.memory_limit, fuel=args.fuel, check_timeout=args.check_timeout,
        ).settings
        crates = tuple(args.package or settings.plugin_crates)
        checks = _checks_by_crate([CliCall.parse(text) for text in args.call or ()], crates)
        command = args.exec[0] if args.exec else None
        exec_output = stderr_fd(out) if command is not None else None

        def printer(crate: Optional[str]) -> WatchPrinter:
            made = WatchPrinter(out, settings.root, as_json=args.json, verbose=args.verbose > 0, clear=args.clear,
                                exec_command=command, plugin=crate)
            printers.append(made)
            return made

        if len(crates) == 1:
            hot = HotPlugin.from_workspace(
                settings.root, settings=settings, crate=crates[0], check=checks.get(crates[0]) or None,
                on_event=printer(None), wait=False, exec_command=command, exec_output=exec_output,
                **host_options(args),
            )
        else:  # every plugin crate at once: one build per change, each plugin checked and swapped on its own
            from ...devloop.hotset import HotPlugins

            hot = HotPlugins.from_workspace(
                settings.root, settings=settings, crates=crates, check={c: v for c, v in checks.items() if v},
                on_event={crate: printer(crate) for crate in crates}, wait=False, exec_command=command,
                exec_output=exec_output, **host_options(args),
            )
        hot.wait_closed()
        if hot.ended is not None:  # the workspace moved or vanished: one line, exit 1
            raise hot.ended
        return EXIT_OK
    except KeyboardInterrupt:
        stopping.set()
        for printer_made in printers:
            printer_made.closing.set()
        if hot is not None:
            hot.close()  # kills a running cargo and waits for it, and stops a running --exec
        out.info("stopped watching")
        return EXIT_INTERRUPTED
    finally:
        if hot is not None:
            hot.close()
        for signum, handler in previous.items():  # only once closed: a late signal is still ignored
            signal.signal(signum, handler)


def _checks_by_crate(calls: "list[Any]", crates: "tuple[str, ...]") -> "dict[str, list[Any]]":
    """Each --call under the plugin crate it checks: ``CRATE:FUNC`` names it; with one crate served, that one."""
    from ...errors import UsageError

    checks: dict[str, list[Any]] = {crate: [] for crate in crates}
    for call in calls:
        crate = call.plugin
        if crate is None:
            if len(crates) > 1:
                raise UsageError(f"--call '{call.function} ...' could check any of the plugin crates served "
                                 f"({', '.join(crates)}); name one: --call '{crates[0]}:{call.function} ...', "
                                 "or serve one with -p CRATE")
            crate = crates[0]
        if crate not in checks:
            raise UsageError(f"--call names {crate!r}, which is not a plugin crate served here ({', '.join(crates)})")
        checks[crate].append(call)
    return checks

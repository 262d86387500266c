"""`wasmforge watch`: serve the plugin, and on every save rebuild, check and hot-swap it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
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
        from ..keys import STATUS_LINE, KeyReader
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

        def on_event(crate: Optional[str]) -> Any:
            made = printer(crate)
            return made if args.stubs is None else _with_stubs(made, args.cwd / args.stubs)

        keys = None
        if len(crates) == 1:
            shown = printer(None)
            hot = HotPlugin.from_workspace(
                settings.root, settings=settings, crate=crates[0], check=checks.get(crates[0]) or None,
                on_event=shown if args.stubs is None else _with_stubs(shown, args.cwd / args.stubs), wait=False,
                exec_command=command, exec_output=exec_output, state=args.state, **host_options(args),
            )
            # Keys steer the one plugin served (rollback, pause); with several, Ctrl-C alone.
            keys = KeyReader.for_terminal(sys.stdin, _Steering(hot, shown, out, stopping, args.json))
            if keys is not None and not args.json:
                out.info(STATUS_LINE)
        else:  # every plugin crate at once: one build per change, each plugin checked and swapped on its own
            from ...devloop.hotset import HotPlugins

            hot = HotPlugins.from_workspace(
                settings.root, settings=settings, crates=crates, check={c: v for c, v in checks.items() if v},
                on_event={crate: on_event(crate) for crate in crates}, wait=False, exec_command=command,
                exec_output=exec_output, **host_options(args),
            )
        try:
            hot.wait_closed()
        finally:
            if keys is not None:
                keys.close()
        if hot.ended is not None:  # the workspace moved or vanished: one line, exit 1
            raise hot.ended
        if stopping.is_set() and not args.json:
            out.info("stopped watching")
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


def _with_stubs(printer: Any, directory: Path) -> Any:
    """`--stubs DIR`: every event to the printer, and after each swap the new version's stubs written to DIR."""
    from ...devloop.stubs import KeepStubs
    from ...errors import UsageError

    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--stubs {directory} is not a directory; name a directory for the .pyi files")
    keep = KeepStubs(directory, printer)

    def on_event(event: Any) -> None:
        printer(event)
        keep(event)
    return on_event


class _Steering:
    """What each key does (cli/keys.py), reported to the printer as a KeyPressed event."""

    def __init__(self, hot: Any, printer: Any, out: Output, stopping: threading.Event, as_json: bool) -> None:
        self.hot = hot
        self.printer = printer
        self.out = out
        self.stopping = stopping
        self.as_json = as_json

    def __call__(self, key: str) -> None:
        from ...errors import WasmforgeError
        from ...events import KeyPressed

        hot = self.hot
        try:
            if key == "r":
                hot.rebuild()
                action = "rebuild"
            elif key == "p":
                if hot.paused:
                    hot.resume()
                    action = "resumed"
                else:
                    hot.pause()
                    action = "paused: saves wait until p"
            elif key == "b":
                serving = next((v for v in hot.versions if v.serving), None)
                newest = hot.versions[-1] if hot.versions else None
                if serving is not None and newest is not None and serving.number != newest.number:
                    action = f"forward to v{hot.forward()}"
                else:
                    action = f"rolled back to v{hot.rollback()}"
            elif key == "c":
                if not self.as_json:
                    self.out.clear_screen()
                action = "cleared"
            elif key == "q":
                self.printer(KeyPressed(key=key, action="quit"))
                self.stopping.set()
                threading.Thread(target=hot.close, name="wasmforge-quit", daemon=True).start()
                return
            else:
                return  # other keys are typing, not commands
        except WasmforgeError as error:
            self.printer(KeyPressed(key=key, action=str(error), ok=False))
            return
        self.printer(KeyPressed(key=key, action=action))


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

"""`wasmforge watch`: serve the plugin, and on every save rebuild, check and hot-swap it."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from ...errors import EXIT_INTERRUPTED, EXIT_OK
from ..output import Output, stderr_fd
from ..plugins import command_workspace, host_options


def run(args: argparse.Namespace, out: Output) -> int:
    """Serves the plugin and rebuilds and reloads it on every save until Ctrl-C or SIGTERM.

    However it is stopped (while starting, building or idle; SIGINT or SIGTERM, once or again while
    stopping), it ends the same way: cargo killed, "stopped watching", exit 130.
    """
    hot: Any = None
    printer: Any = None
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
        if args.package and len(args.package) > 1:
            raise UsageError(f"watch serves one plugin crate; give -p once (got {', '.join(args.package)})")
        checks = [CliCall.parse(text) for text in args.call or ()]
        command = args.exec[0] if args.exec else None
        printer = WatchPrinter(out, settings.root, as_json=args.json, verbose=args.verbose > 0, clear=args.clear,
                               exec_command=command)
        hot = HotPlugin.from_workspace(
            settings.root, settings=settings, crate=(args.package or [None])[0], check=checks or None, on_event=printer, wait=False,
            exec_command=command, exec_output=stderr_fd(out) if command is not None else None, **host_options(args),
        )
        hot.wait_closed()
        return EXIT_OK
    except KeyboardInterrupt:
        stopping.set()
        if printer is not None:
            printer.closing.set()
        if hot is not None:
            hot.close()  # kills a running cargo and waits for it, and stops a running --exec
        out.info("stopped watching")
        return EXIT_INTERRUPTED
    finally:
        if hot is not None:
            hot.close()
        for signum, handler in previous.items():  # only once closed: a late signal is still ignored
            signal.signal(signum, handler)

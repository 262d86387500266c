"""One module per command, each with ``run(args, out) -> exit code``: parse, call the library, print.

main() imports only the module of the command that runs (wasmforge.cli.parser.COMMANDS).
"""

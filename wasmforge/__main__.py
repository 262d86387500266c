"""`python -m wasmforge`: the same as the `wasmforge` command."""

from .cli import main

raise SystemExit(main())

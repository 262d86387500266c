"""The workspace: a Cargo workspace of plugin crates, and everything wasmforge does with one.

Above the runtime, below the dev loop. :class:`~.workspace.Workspace` is what
a command makes once and passes down; behind it, wasmforge.toml
(:mod:`.settings`), Cargo.toml read by one set of rules (:mod:`.manifest`,
:mod:`.tomlfile`), the toolchain (:mod:`.toolchain`), cargo's command lines,
built in one place (:mod:`.cargo`), the lock file (:mod:`.lockfile`), and what
runs cargo: :mod:`.build`, :mod:`.native`, :mod:`.testing`; plus
:mod:`.scaffold` (`wasmforge new`) and :mod:`.doctor`.
"""

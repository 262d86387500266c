"""The dev loop: rebuild on every save, check, and hot-swap the new version into a running host.

Above the workspace, below the CLI. :class:`~.hot.HotPlugin` is the public
handle that swaps versions; :class:`~.supervisor.Supervisor` wires what feeds
it: the watcher (:mod:`.watcher`, over the set :mod:`.sources` works out and
:mod:`.filters` judges), the debounced change queue (:mod:`.changes`), the
builder (:mod:`.builder`), the reload loop's steps (:mod:`.loop`), and
`watch --exec` (:mod:`.after_swap`).
"""

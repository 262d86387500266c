"""The runtime: loading plugins and calling them, on wasmtime-py.

Above the wire contract (wasmforge.abi), below the workspace. The public face
is :class:`~.plugin.Plugin` (and :func:`~.plugin.load`); behind it, a loaded
plugin is two explicit objects, what it is (:mod:`.loaded`) and who holds its
instances (:mod:`.instances`), which the instance (:mod:`.instance`) and each
function's call path (:mod:`.function`) get as arguments. Compiling
(:mod:`.compiled`, :mod:`.cache`, :mod:`.engines`), imports and host functions
(:mod:`.imports`, :mod:`.caller`, :mod:`.wasi`), the fast C calls
(:mod:`.fastcall`), Ctrl-C (:mod:`.interrupt`), failures (:mod:`.failures`),
chains (:mod:`.chain`) and inspection (:mod:`.inspection`) are the rest.
"""

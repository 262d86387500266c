"""The wire contract (docs/ABI.md): what a module says it exports, how values cross, and the .wasm file itself.

- :mod:`.signature`: signatures from a module's ``wasmforge.exports`` metadata, or its bare wasm types;
- :mod:`.codec`: numbers and the two buffers of a buffer call, in both directions;
- :mod:`.wasmfile`: reading a plugin file, its size, header and sections;
- :mod:`.wasmtypes`: naming wasm types without the calls that abort the process;
- :mod:`.arguments`: command-line words and piped input as the values a signature wants.

Above the errors, limits and events; below the runtime. Nothing here runs wasm.
"""

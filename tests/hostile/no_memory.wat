;; Claims a buffer export but exports no memory to put buffers in.
(module
  (func (export "echo") (param i32 i32) (result i32) (i32.const 16))
  (@custom "wasmforge.exports" "{\"v\":1,\"kind\":\"export\",\"name\":\"echo\",\"abi\":\"buffer\",\"input\":\"str\",\"output\":\"str\",\"params\":[{\"name\":\"s\",\"type\":\"&str\",\"wire\":\"str\"}],\"returns\":\"String\",\"fallible\":false}\n"))

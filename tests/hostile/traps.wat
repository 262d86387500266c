;; Plain wasm that misbehaves at the instruction level (no wasmforge metadata).
(module
  (memory (export "memory") 1)
  (func (export "loop_forever") (loop $again (br $again)))
  (func $deeper (export "recurse") (param $n i32) (result i32)
    (i32.add (i32.const 1) (call $deeper (i32.add (local.get $n) (i32.const 1)))))
  (func (export "grow_until_refused") (result i32)
    (loop $again
      (br_if $again (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
  (func (export "load_out_of_bounds") (result i32) (i32.load (i32.const 70000)))
  (func (export "divide_by_zero") (param $a i32) (result i32) (i32.div_s (local.get $a) (i32.const 0)))
  (func (export "trap") unreachable)
  (func (export "answer") (result i32) (i32.const 42)))

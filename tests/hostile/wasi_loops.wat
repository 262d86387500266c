;; Says "started" on stdout, then loops forever: only a time limit, a cancel or Ctrl-C ends it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "started\n")
  (func $say_started
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "loop_forever") (call $say_started) (loop $again (br $again)))
  (func (export "answer") (result i32) (i32.const 42)))

;; Writes to stdout: `say(n)` n bytes of "x" in one write; `flood(blocks)` 64 KiB blocks,
;; forever when blocks is 0, asking the host function `wrote` after each whether to go on.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "wrote" (func $wrote (result i32)))
  (memory (export "memory") 2)
  (func $fill (memory.fill (i32.const 1024) (i32.const 120) (i32.const 65536)))
  (func $write (param $length i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (local.get $length))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "say") (param $n i32) (call $fill) (call $write (local.get $n)))
  (func (export "flood") (param $blocks i32)
    (call $fill)
    (loop $again
      (call $write (i32.const 65536))
      (local.set $blocks (i32.sub (local.get $blocks) (i32.const 1)))
      (br_if $again (i32.and (call $wrote) (i32.ne (local.get $blocks) (i32.const 0)))))))

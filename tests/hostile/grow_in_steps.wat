;; A memory bomb that grows 1 MiB (16 pages) at a time and traps with `unreachable` as soon
;; as a grow is refused: it never reaches the limit itself, so only the refused grow tells.
(module
  (memory (export "memory") 1)
  (func (export "bomb")
    (loop $again
      (br_if $again (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)
  (func (export "grow_then_trap") (param $pages i32)
    (drop (memory.grow (local.get $pages)))
    unreachable)
  (func (export "answer") (result i32) (i32.const 42)))

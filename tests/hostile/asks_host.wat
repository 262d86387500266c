;; Loops, asking the host function `keep_going` before each round whether to go on;
;; returns how many rounds it made.
(module
  (import "env" "keep_going" (func $keep_going (result i32)))
  (func (export "spin_with_host") (result i32) (local $n i32)
    (loop $again
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $again (call $keep_going)))
    (local.get $n))
  (func (export "answer") (result i32) (i32.const 42)))

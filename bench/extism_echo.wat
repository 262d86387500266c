;; The Extism side of the benchmark: a plugin written directly against Extism's
;; kernel ABI (imports from "extism:host/env"), as small as an Extism plugin can be.
;;
;; Extism keeps a call's input and output in its kernel's memory, not the
;; plugin's. `echo` copies the input to a fresh output block eight bytes per
;; kernel call (input_load_u64 / store_u64), then byte by byte for the tail,
;; and hands it back with output_set. A plugin built with Extism's PDKs copies
;; the input into its own memory first and the result back out, so this is the
;; cheapest echo Extism allows: the comparison flatters Extism, not wasmforge.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)

  ;; The no-op call: returns success without touching input or output.
  (func (export "noop") (result i32)
    i32.const 0)

  ;; Returns its input unchanged.
  (func (export "echo") (result i32)
    (local $length i64) (local $out i64) (local $at i64) (local $whole_words i64)
    (local.set $length (call $input_length))
    (local.set $out (call $alloc (local.get $length)))
    (local.set $whole_words (i64.and (local.get $length) (i64.const -8)))
    (block $words_done
      (loop $words
        (br_if $words_done (i64.ge_u (local.get $at) (local.get $whole_words)))
        (call $store_u64
          (i64.add (local.get $out) (local.get $at))
          (call $input_load_u64 (local.get $at)))
        (local.set $at (i64.add (local.get $at) (i64.const 8)))
        (br $words)))
    (block $bytes_done
      (loop $bytes
        (br_if $bytes_done (i64.ge_u (local.get $at) (local.get $length)))
        (call $store_u8
          (i64.add (local.get $out) (local.get $at))
          (call $input_load_u8 (local.get $at)))
        (local.set $at (i64.add (local.get $at) (i64.const 1)))
        (br $bytes)))
    (call $output_set (local.get $out) (local.get $length))
    i32.const 0)
)

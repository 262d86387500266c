;; A start function that never returns: loading must not hang.
(module
  (func $start (loop $again (br $again)))
  (start $start))

//! The example plugin. Every `#[plugin_fn]` function is callable from Python:
//!
//!     wasmforge build
//!     wasmforge call add 1 2          # prints 3
//!
//! Write ordinary Rust: numbers, bool, &str/String, &[u8]/Vec<u8>, Option,
//! Vec and serde types in and out, `Result<T, E>` for errors Python can catch.

use wasmforge_pdk::plugin_fn;

/// Adds two numbers. Plain numbers cross as native wasm values, without copying.
#[plugin_fn]
pub fn add(one: i32, two: i32) -> i32 {
    one + two
}

/// The length of a string in bytes.
#[plugin_fn]
pub fn length(s: &str) -> u32 {
    s.len() as u32
}

/// A greeting: strings come back to Python as `str`.
#[plugin_fn]
pub fn greet(name: &str) -> String {
    format!("Hello, {}!", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        assert_eq!(add(1, 2), 3);
        assert_eq!(length("supercalifragilisticexpialidocious"), 34);
        assert_eq!(greet("wasm"), "Hello, wasm!");
    }
}

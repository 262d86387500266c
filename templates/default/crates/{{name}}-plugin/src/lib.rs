//! The {{name}} plugin. Every `#[plugin_fn]` function is callable from Python:
//!
//! ```text
//! wasmforge build
//! wasmforge call add 1 2          # prints 3
//! wasmforge test                  # the tests below, then tests/ from Python
//! ```
//!
//! Write ordinary Rust: numbers, bool, &str/String, &[u8]/Vec<u8>, Option,
//! Vec and serde types in and out, `Result<T, E>` for errors Python can catch.
//! `///` doc comments become the Python functions' `__doc__`.
//! To call back into Python, declare the functions in a `#[host_fn] extern "C"`
//! block (see wasmforge's docs/ABI.md).

use serde::{Deserialize, Serialize};
use std::fmt;
use wasmforge_pdk::{plugin_fn, plugin_type};

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

/// What `stats` returns. Serde types cross as JSON: Python gets
/// `{"words": 2, "longest": "hello"}`. `#[plugin_type]` records the fields, so
/// Python shows them in signatures and `wasmforge stubs` types them.
#[plugin_type]
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Stats {
    pub words: u32,
    pub longest: String,
}

/// Counts the words of `text` and finds the longest.
#[plugin_fn]
pub fn stats(text: &str) -> Stats {
    let words: Vec<&str> = text.split_whitespace().collect();
    let longest = words.iter().fold("", |best, w| if w.len() > best.len() { w } else { best });
    Stats { words: words.len() as u32, longest: longest.to_string() }
}

/// Why text is not a port. A serde error crosses as a value: Python's
/// `PluginError` has its Display text as the message and the error itself as
/// `.data` (`"Zero"`, or `{"NotANumber": {"text": "http", "reason": "..."}}`).
#[plugin_type]
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum PortError {
    Zero,
    NotANumber { text: String, reason: String },
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::Zero => write!(f, "port 0 is not a usable port"),
            PortError::NotANumber { text, reason } => write!(f, "{:?} is not a port number: {}", text, reason),
        }
    }
}

/// The port number in `text`: `Err(e)` raises `wasmforge.PluginError` in Python.
#[plugin_fn]
pub fn parse_port(text: &str) -> Result<u16, PortError> {
    match text.trim().parse::<u16>() {
        Ok(0) => Err(PortError::Zero),
        Ok(port) => Ok(port),
        Err(e) => Err(PortError::NotANumber { text: text.to_string(), reason: e.to_string() }),
    }
}

/// Markdown in, Markdown out: expands `:crab:`-style shortcodes. A step in a
/// plugin chain (`wasmforge chain preprocess`), like the blog series' mdBook
/// preprocessor.
#[plugin_fn]
pub fn preprocess(markdown: String) -> String {
    const SHORTCODES: &[(&str, &str)] = &[(":crab:", "🦀"), (":rocket:", "🚀"), (":wave:", "👋")];
    SHORTCODES.iter().fold(markdown, |text, (code, emoji)| text.replace(code, emoji))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        assert_eq!(add(1, 2), 3);
        assert_eq!(length("supercalifragilisticexpialidocious"), 34);
        assert_eq!(greet("wasm"), "Hello, wasm!");
        assert_eq!(stats("hello big world").words, 3);
        assert_eq!(parse_port("8080"), Ok(8080));
        assert!(parse_port("http").is_err());
        assert_eq!(preprocess("hi :wave:".to_string()), "hi 👋");
    }
}

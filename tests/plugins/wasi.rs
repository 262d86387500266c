//! A plugin for wasm32-wasi: std's I/O works, and reaches Python.

use wasmforge_pdk::plugin_fn;

#[plugin_fn]
pub fn shout(text: &str) -> String {
    println!("shouting {}", text);
    eprintln!("to stderr: {}", text.len());
    text.to_uppercase()
}

#[plugin_fn]
pub fn add(one: i32, two: i32) -> i32 {
    println!("adding {} and {}", one, two);
    one + two
}

#[plugin_fn]
pub fn has_clock() -> bool {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).is_ok()
}

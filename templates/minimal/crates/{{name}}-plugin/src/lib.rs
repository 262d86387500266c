//! The {{name}} plugin: plain wasm numbers only, so no glue and no crates.
//! Each function is exported under its own name with its native signature;
//! Python calls them with ints and floats: `plugin.add(1, 2)`.

/// Adds two numbers (the blog series' first plugin).
#[no_mangle]
pub extern "C" fn add(one: i32, two: i32) -> i32 {
    one.wrapping_add(two)
}

/// The n-th Fibonacci number (wrapping past u64).
#[no_mangle]
pub extern "C" fn fib(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let next = a.wrapping_add(b);
        a = b;
        b = next;
    }
    a
}

/// The mean of two floats.
#[no_mangle]
pub extern "C" fn average(a: f64, b: f64) -> f64 {
    (a + b) / 2.0
}

//! Plugin functions that misbehave on purpose: each must cost the host one
//! clear exception and nothing else (docs/SECURITY.md).

use wasmforge_pdk::plugin_fn;

#[plugin_fn]
pub fn spin(forever: bool) -> u64 {
    let mut count: u64 = 0;
    while forever || count < 10 {
        // A volatile read the optimizer cannot remove: the loop really runs.
        count = unsafe { std::ptr::read_volatile(&count) }.wrapping_add(1);
    }
    count
}

#[plugin_fn]
pub fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    1 + recurse(depth + 1)
}

#[plugin_fn]
pub fn hog_memory(chunk_mib: u32) -> u32 {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        kept.push(vec![1u8; chunk_mib as usize * 1024 * 1024]);
        if kept.len() == usize::MAX {
            return 0;
        }
    }
}

#[plugin_fn]
pub fn read_out_of_bounds(address: u32) -> u32 {
    unsafe { std::ptr::read_volatile(address as usize as *const u32) }
}

#[plugin_fn]
pub fn divide(a: i32, b: i32) -> i32 {
    a / b
}

#[plugin_fn]
pub fn hit_unreachable(really: bool) -> u32 {
    if really {
        core::arch::wasm32::unreachable()
    }
    1
}

#[plugin_fn]
pub fn fine(x: u32) -> u32 {
    x + 1
}

use wasmforge_pdk::plugin_fn;

#[plugin_fn]
pub fn takes_mut(v: &mut Vec<u8>) {} // BAD-MUT

#[plugin_fn]
pub fn takes_ref(v: &Vec<u8>) -> u32 { 0 } // BAD-REF

#[plugin_fn]
pub fn generic<T: Clone>(v: T) -> u32 { 0 } // BAD-GENERIC

#[plugin_fn]
pub fn takes_impl(v: impl Fn()) {} // BAD-IMPL

#[plugin_fn]
pub fn takes_pattern((a, b): (i32, i32)) -> i32 { a } // BAD-PATTERN

#[plugin_fn]
pub async fn later() {} // BAD-ASYNC

#[plugin_fn]
pub fn memory() {} // BAD-RESERVED

#[plugin_fn(wire = "cbor")] // BAD-WIRE
pub fn other_wire() {}

#[wasmforge_pdk::plugin_type(strict)] // BAD-ARGS
pub struct Strict;

pub struct NotSerde;

#[plugin_fn]
pub fn takes_not_serde(count: u32, x: NotSerde) -> u32 { count } // BAD-SERDE

#[plugin_fn]
pub fn returns_not_serde() -> NotSerde { NotSerde } // BAD-RETURN

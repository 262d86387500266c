//! A plugin with state that survives hot reloads (issue 15): a counter.

use serde::{Deserialize, Serialize};
use wasmforge_pdk::{plugin_fn, plugin_state, plugin_type, State};

#[derive(Serialize, Deserialize, Default)]
pub struct Counter {
    pub count: u64,
}

#[plugin_state]
static COUNTER: State<Counter> = State::new();

/// Counts one more call; returns the count so far.
#[plugin_fn]
pub fn bump() -> u64 {
    COUNTER.with(|c| {
        c.count += 1;
        c.count
    })
}

#[plugin_fn]
pub fn release() -> u32 {
    1
}

/// The count so far, under a label.
#[plugin_type]
#[derive(Serialize, Deserialize)]
pub struct Tally {
    pub label: String,
    pub count: u64,
}

/// The count so far, labelled; does not count itself.
#[plugin_fn]
pub fn tally(label: String) -> Tally {
    COUNTER.with(|c| Tally { label, count: c.count })
}

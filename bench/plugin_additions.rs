
// ---- added by bench/run.py: the benchmark's work items ---------------------------------

/// Returns its input: raw bytes in, raw bytes out.
#[plugin_fn]
pub fn echo(data: Vec<u8>) -> Vec<u8> {
    data
}

/// Returns its input: UTF-8 text in, text out.
#[plugin_fn]
pub fn echo_str(text: String) -> String {
    text
}

/// A small record, as a host sends per request: JSON (serde) in and out.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Reading {
    pub sensor: String,
    pub value: f64,
    pub unit: String,
    pub tags: Vec<String>,
    pub ok: bool,
}

/// Scales a reading's value; everything else comes back as it went in.
#[plugin_fn]
pub fn calibrate(reading: Reading) -> Reading {
    Reading { value: reading.value * 1.5 + 0.25, ..reading }
}

/// A CPU-bound loop, for running from several threads at once.
#[plugin_fn]
pub fn spin(rounds: u32) -> u32 {
    let mut state: u32 = 1;
    for _ in 0..rounds {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    }
    state
}


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

/// The JSON `calibrate` is timed with, kept by `set_serde_sample` for `serde_floor`.
static SERDE_SAMPLE: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Keeps the arguments of a `calibrate` call (as the host encodes them) for `serde_floor`.
#[plugin_fn]
pub fn set_serde_sample(json: Vec<u8>) {
    *SERDE_SAMPLE.lock().unwrap() = json;
}

/// What serde_json costs inside wasm, with no call across the boundary: `rounds` times
/// either calibrate's whole glue (split the argument array, decode, calibrate, encode:
/// what a call runs in wasm), or serde_json alone (decode the Reading, encode it).
/// Returns the bytes produced, so nothing is optimized away.
#[plugin_fn]
pub fn serde_floor(rounds: u32, glue: bool) -> u32 {
    let sample = SERDE_SAMPLE.lock().unwrap();
    let object = &sample[1..sample.len() - 1]; // the one argument, without the array around it
    let mut produced = 0u32;
    for _ in 0..rounds {
        if glue {
            produced += __wf_call_calibrate(&sample).map(|out| out.len() as u32).unwrap_or(0);
        } else {
            let reading: Reading = wasmforge_pdk::serde_json::from_slice(object).unwrap();
            produced += wasmforge_pdk::serde_json::to_vec(&reading).unwrap().len() as u32;
        }
    }
    produced
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


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

/// `calibrate` on the MessagePack wire (docs/ABI.md, "The MessagePack wire").
#[plugin_fn(wire = "msgpack")]
pub fn calibrate_mp(reading: Reading) -> Reading {
    calibrate(reading)
}

/// The JSON `calibrate` is timed with, kept by `set_serde_sample` for `serde_floor`,
/// and the same Reading as MessagePack.
static SERDE_SAMPLE: std::sync::Mutex<(Vec<u8>, Vec<u8>)> = std::sync::Mutex::new((Vec::new(), Vec::new()));

/// Keeps the arguments of a `calibrate` call (as the host encodes them) for `serde_floor`.
#[plugin_fn]
pub fn set_serde_sample(json: Vec<u8>) {
    let reading: Reading = wasmforge_pdk::serde_json::from_slice(&json[1..json.len() - 1]).unwrap();
    *SERDE_SAMPLE.lock().unwrap() = (json, pack_reading(&reading));
}

/// What the struct path costs inside wasm, with no call across the boundary: `rounds` times
/// mode 1, calibrate's whole glue (split the argument array, decode, calibrate, encode: what
/// a call runs in wasm); mode 0, serde_json alone (decode the Reading, encode it); mode 2, a
/// hand-written MessagePack decode + encode of it (no serde: a lower bound for a binary wire);
/// mode 3, calibrate_mp's whole glue (the pdk's serde MessagePack).
/// Returns the bytes produced, so nothing is optimized away.
#[plugin_fn]
pub fn serde_floor(rounds: u32, mode: u32) -> u32 {
    let sample = SERDE_SAMPLE.lock().unwrap();
    let (json, packed) = (&sample.0, &sample.1);
    let object = &json[1..json.len() - 1]; // the one argument, without the array around it
    let mut packed_args = vec![0x91u8]; // calibrate_mp's argument list: an array of the one Reading
    packed_args.extend_from_slice(packed);
    let mut produced = 0u32;
    for _ in 0..rounds {
        produced += match mode {
            1 => __wf_call_calibrate(json).map(|out| out.len() as u32).unwrap_or(0),
            0 => {
                let reading: Reading = wasmforge_pdk::serde_json::from_slice(object).unwrap();
                wasmforge_pdk::serde_json::to_vec(&reading).unwrap().len() as u32
            }
            3 => __wf_call_calibrate_mp(&packed_args).map(|out| out.len() as u32).unwrap_or(0),
            _ => pack_reading(&unpack_reading(packed).unwrap()).len() as u32,
        };
    }
    produced
}

fn pack_str(out: &mut Vec<u8>, text: &str) {
    if text.len() < 32 {
        out.push(0xa0 | text.len() as u8);
    } else {
        out.push(0xd9);
        out.push(text.len() as u8);
    }
    out.extend_from_slice(text.as_bytes());
}

/// The Reading as a MessagePack map, as Python's `msgpack.packb(reading)` writes it.
fn pack_reading(reading: &Reading) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(0x85);
    pack_str(&mut out, "sensor");
    pack_str(&mut out, &reading.sensor);
    pack_str(&mut out, "value");
    out.push(0xcb);
    out.extend_from_slice(&reading.value.to_bits().to_be_bytes());
    pack_str(&mut out, "unit");
    pack_str(&mut out, &reading.unit);
    pack_str(&mut out, "tags");
    out.push(0x90 | reading.tags.len() as u8);
    for tag in &reading.tags {
        pack_str(&mut out, tag);
    }
    pack_str(&mut out, "ok");
    out.push(if reading.ok { 0xc3 } else { 0xc2 });
    out
}

fn unpack_str<'a>(data: &'a [u8], at: &mut usize) -> Option<&'a str> {
    let (len, start) = match *data.get(*at)? {
        b @ 0xa0..=0xbf => ((b & 0x1f) as usize, *at + 1),
        0xd9 => (*data.get(*at + 1)? as usize, *at + 2),
        _ => return None,
    };
    *at = start + len;
    std::str::from_utf8(data.get(start..start + len)?).ok()
}

fn unpack_reading(data: &[u8]) -> Option<Reading> {
    let mut reading = Reading { sensor: String::new(), value: 0.0, unit: String::new(), tags: Vec::new(), ok: false };
    let fields = (*data.first()? & 0x0f) as usize;
    let mut at = 1;
    for _ in 0..fields {
        match unpack_str(data, &mut at)? {
            "sensor" => reading.sensor = unpack_str(data, &mut at)?.to_string(),
            "unit" => reading.unit = unpack_str(data, &mut at)?.to_string(),
            "value" => {
                let bytes: [u8; 8] = data.get(at + 1..at + 9)?.try_into().ok()?;
                reading.value = f64::from_bits(u64::from_be_bytes(bytes));
                at += 9;
            }
            "tags" => {
                let count = (*data.get(at)? & 0x0f) as usize;
                at += 1;
                for _ in 0..count {
                    reading.tags.push(unpack_str(data, &mut at)?.to_string());
                }
            }
            "ok" => {
                reading.ok = *data.get(at)? == 0xc3;
                at += 1;
            }
            _ => return None,
        }
    }
    Some(reading)
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

//! A plugin exercising every type, error path and host function the wire
//! contract supports (docs/ABI.md). Built once per test session.

use serde::{Deserialize, Serialize};
use std::fmt;
use wasmforge_pdk::{host_fn, plugin_fn};

// ---- plain numbers: native wasm signatures ----

#[plugin_fn]
pub fn add(one: i32, two: i32) -> i32 {
    one.wrapping_add(two)
}

#[plugin_fn]
pub fn add_u64(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

#[plugin_fn]
pub fn add_i64(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

#[plugin_fn]
pub fn negate_i8(x: i8) -> i8 {
    x.wrapping_neg()
}

#[plugin_fn]
pub fn succ_u8(x: u8) -> u8 {
    x.wrapping_add(1)
}

#[plugin_fn]
pub fn succ_u16(x: u16) -> u16 {
    x.wrapping_add(1)
}

#[plugin_fn]
pub fn neg_i16(x: i16) -> i16 {
    x.wrapping_neg()
}

#[plugin_fn]
pub fn max_u32() -> u32 {
    u32::MAX
}

#[plugin_fn]
pub fn half(x: f32) -> f32 {
    x / 2.0
}

#[plugin_fn]
pub fn hypot(a: f64, b: f64) -> f64 {
    (a * a + b * b).sqrt()
}

#[plugin_fn]
pub fn not(b: bool) -> bool {
    !b
}

#[plugin_fn]
pub fn nothing() {}

// ---- text and bytes: raw buffers ----

/// The series' `double`: the word twice.
#[plugin_fn]
pub fn double(word: &str) -> String {
    format!("{}{}", word, word)
}

#[plugin_fn]
pub fn echo_str(s: String) -> String {
    s
}

#[plugin_fn]
pub fn echo_bytes(data: &[u8]) -> Vec<u8> {
    data.to_vec()
}

#[plugin_fn]
pub fn reverse_bytes(mut data: Vec<u8>) -> Vec<u8> {
    data.reverse();
    data
}

#[plugin_fn]
pub fn byte_len(data: &[u8]) -> u64 {
    data.len() as u64
}

#[plugin_fn]
pub fn static_text() -> &'static str {
    "static"
}

/// `n` bytes of a repeating pattern: for results far larger than any argument.
#[plugin_fn]
pub fn make_bytes(n: u32) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

// ---- numbers as the result of a buffer call: JSON, encoded by the pdk per type ----

fn parsed<T: std::str::FromStr>(text: &str) -> T {
    text.parse().unwrap_or_else(|_| panic!("not a number: {}", text))
}

#[plugin_fn]
pub fn parse_i8(text: &str) -> i8 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_i16(text: &str) -> i16 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_i32(text: &str) -> i32 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_i64(text: &str) -> i64 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_u8(text: &str) -> u8 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_u16(text: &str) -> u16 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_u32(text: &str) -> u32 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_u64(text: &str) -> u64 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_f32(text: &str) -> f32 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_f64(text: &str) -> f64 {
    parsed(text)
}

#[plugin_fn]
pub fn parse_bool(text: &str) -> bool {
    parsed(text)
}

// ---- several arguments and serde types: JSON ----

/// The series' `multiply` (Part 2): repeat the word n times, and n times the
/// repeated word's length as a wrapping u8.
#[plugin_fn]
pub fn multiply(n: u8, word: String) -> (u8, String) {
    let repeated = word.repeat(n as usize);
    (n.wrapping_mul(repeated.len() as u8), repeated)
}

/// The series' struct, evolved one step per call.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Series {
    pub one: u8,
    pub two: u32,
    pub three: String,
}

#[plugin_fn]
pub fn evolve(state: Series) -> Series {
    Series {
        one: state.one.wrapping_add(60),
        two: state.two.wrapping_mul(7).wrapping_add(1),
        three: format!("{}{}", state.three, state.one % 10),
    }
}

#[plugin_fn]
pub fn join(parts: Vec<String>, sep: &str) -> String {
    parts.join(sep)
}

#[plugin_fn]
pub fn first_or(items: Vec<i64>, default: Option<i64>) -> Option<i64> {
    items.first().copied().or(default)
}

#[plugin_fn]
pub fn maybe_upper(s: Option<String>) -> Option<String> {
    s.map(|s| s.to_uppercase())
}

#[plugin_fn]
pub fn sum_u8s(data: Vec<u8>, extra: u8) -> u32 {
    data.iter().map(|&b| b as u32).sum::<u32>() + extra as u32
}

#[plugin_fn]
pub fn mixed(number: i32, text: &str, data: &[u8], flag: bool, owned: Vec<u8>, maybe: Option<String>, series: Series) -> String {
    format!(
        "{}|{}|{:?}|{}|{:?}|{:?}|{}/{}/{}",
        number, text, data, flag, owned, maybe, series.one, series.two, series.three
    )
}

#[plugin_fn]
pub fn floats(values: Vec<f64>) -> f64 {
    values.iter().sum()
}

#[plugin_fn]
pub fn chars_of(s: &str) -> Vec<char> {
    s.chars().collect()
}

// ---- errors and panics ----

#[plugin_fn]
pub fn parse_positive(s: &str) -> Result<u32, String> {
    s.trim().parse::<u32>().map_err(|e| format!("{:?} is not a positive number: {}", s, e))
}

#[derive(Debug)]
pub struct DivError {
    pub numerator: i32,
}

impl fmt::Display for DivError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "cannot divide {} by zero", self.numerator)
    }
}

#[plugin_fn]
pub fn checked_div(a: i32, b: i32) -> Result<i32, DivError> {
    if b == 0 {
        Err(DivError { numerator: a })
    } else {
        Ok(a / b)
    }
}

#[plugin_fn]
pub fn explode(n: u32) -> String {
    if n == 3 {
        panic!("exploded on {}", n); // PANIC-LINE
    }
    format!("fine {}", n)
}

/// Panics with exactly `message`: the pdk writes the panic report's JSON by hand.
#[plugin_fn]
pub fn explode_with(message: &str) -> u32 {
    panic!("{}", message) // PANIC-WITH-LINE
}

#[plugin_fn]
pub fn explode_native(n: i32) -> i32 {
    let table = [1, 2, 3];
    table[n as usize] // NATIVE-PANIC-LINE
}

#[plugin_fn]
pub fn unit_or_error(fail: bool) -> Result<(), String> {
    if fail {
        Err("asked to fail".to_string())
    } else {
        Ok(())
    }
}

// ---- host functions ----

#[host_fn]
extern "C" {
    /// The series' print_str: text out through the host.
    fn print_str(message: &str);
    fn lookup(key: &str) -> Option<String>;
    fn host_add(a: i32, b: i32) -> i32;
    fn host_bytes(data: Vec<u8>) -> Vec<u8>;
    fn host_pair(name: String, count: u32) -> Vec<String>;
    fn host_number() -> u64;
}

#[plugin_fn]
pub fn greet_via_host(name: &str) -> String {
    print_str(&format!("greeting {}", name));
    match lookup(name) {
        Some(title) => format!("Hello, {} {}!", title, name),
        None => format!("Hello, {}!", name),
    }
}

#[plugin_fn]
pub fn sum_via_host(a: i32, b: i32) -> i32 {
    host_add(a, b)
}

#[plugin_fn]
pub fn bytes_via_host(data: Vec<u8>) -> Vec<u8> {
    host_bytes(data)
}

/// Calls the host, which may call back into this plugin, and then reads its
/// input again: a nested call must not have written over it.
#[plugin_fn]
pub fn bytes_around_host(data: &[u8]) -> Vec<u8> {
    let back = host_bytes(data.to_vec());
    let mut out = data.to_vec();
    out.extend_from_slice(&back);
    out
}

/// The same with a lone owned argument, which takes the input buffer itself.
#[plugin_fn]
pub fn owned_around_host(data: Vec<u8>) -> Vec<u8> {
    let back = host_bytes(data.clone());
    let mut out = data;
    out.extend_from_slice(&back);
    out
}

#[plugin_fn]
pub fn pair_via_host(name: &str, count: u32) -> Vec<String> {
    host_pair(name.to_string(), count)
}

#[plugin_fn]
pub fn number_via_host() -> u64 {
    host_number()
}

// ---- instance state ----

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Counts calls into this instance: a fresh instance starts again at 1.
#[plugin_fn]
pub fn counter() -> u32 {
    CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
}

// ---- the MessagePack wire: twins of JSON functions ----

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Shape {
    Dot,
    Circle(f64),
    Pair(i32, i32),
    Rect { w: u32, h: u32 },
}

/// Every shape a value takes on the wire, echoed with one change, so JSON and
/// MessagePack must agree on all of it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Corpus {
    pub name: String,
    pub big: u64,
    pub small: i64,
    pub ratio: f64,
    pub single: f32,
    pub tags: Vec<String>,
    pub shapes: Vec<Shape>,
    pub maybe: Option<Box<Corpus>>,
    pub pair: (u8, String),
    pub data: Vec<u8>,
    pub empty: Vec<Vec<i32>>,
}

fn grow(mut corpus: Corpus) -> Corpus {
    corpus.tags.push(format!("{}✓", corpus.tags.len()));
    corpus
}

#[plugin_fn]
pub fn corpus(c: Corpus, n: u8) -> (Corpus, u8) {
    (grow(c), n)
}

#[plugin_fn(wire = "msgpack")]
pub fn corpus_mp(c: Corpus, n: u8) -> (Corpus, u8) {
    (grow(c), n)
}

#[plugin_fn(wire = "msgpack")]
pub fn multiply_mp(n: u8, word: String) -> (u8, String) {
    multiply(n, word)
}

#[plugin_fn(wire = "msgpack")]
pub fn evolve_mp(state: Series) -> Series {
    evolve(state)
}

#[plugin_fn(wire = "msgpack")]
pub fn first_or_mp(items: Vec<i64>, default: Option<i64>) -> Option<i64> {
    first_or(items, default)
}

#[plugin_fn(wire = "msgpack")]
pub fn mixed_mp(number: i32, text: &str, data: &[u8], flag: bool, owned: Vec<u8>, maybe: Option<String>, series: Series) -> String {
    mixed(number, text, data, flag, owned, maybe, series)
}

#[plugin_fn(wire = "msgpack")]
pub fn floats_mp(values: Vec<f64>) -> f64 {
    floats(values)
}

#[plugin_fn(wire = "msgpack")]
pub fn checked_div_mp(a: i32, b: i32) -> Result<i32, DivError> {
    checked_div(a, b)
}

/// A lone string stays raw bytes under either wire; the result is MessagePack.
#[plugin_fn(wire = "msgpack")]
pub fn chars_of_mp(s: &str) -> Vec<char> {
    chars_of(s)
}

/// A recorded struct on the MessagePack wire: Python checks its dicts before the call.
#[wasmforge_pdk::plugin_type]
#[derive(Serialize, Deserialize, Debug)]
pub struct Point {
    pub x: i32,
    pub y: i32,
    pub label: Option<String>,
}

/// Mirrors a point; a point at the origin is an error with data (status 3 stays JSON).
#[plugin_fn(wire = "msgpack")]
pub fn mirror_mp(p: Point) -> Result<Point, Shape> {
    if p.x == 0 && p.y == 0 {
        return Err(Shape::Pair(p.x, p.y));
    }
    Ok(Point { x: -p.x, y: -p.y, label: p.label })
}

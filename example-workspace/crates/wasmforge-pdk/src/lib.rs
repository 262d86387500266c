//! The guest side of wasmforge's wire contract (docs/ABI.md in wasmforge).
//!
//! Plugin authors need two attributes:
//! - [`plugin_fn`]: put `#[plugin_fn]` above an ordinary `pub fn` and
//!   wasmforge's Python host can call it;
//! - [`host_fn`]: put `#[host_fn]` above an `extern "C" { fn log(message: &str); }`
//!   block to call functions the Python host provides;
//! - [`plugin_type`]: put `#[plugin_type]` above a serde struct or enum that
//!   crosses the boundary, and Python shows its fields, checks dicts against
//!   them and types them in `wasmforge stubs`;
//! - [`plugin_state`]: put `#[plugin_state]` above a `static NAME: State<T> =
//!   State::new();` (T a serde type with Default) and the state survives hot
//!   reloads: wasmforge saves it from the serving version and restores it into
//!   the next one.
//!
//! Everything in `__private` is what the attributes' generated code calls; it
//! is public only so that generated code can reach it.

pub use example_macro::{host_fn, plugin_fn, plugin_state, plugin_type};

/// Re-exported so plugins and the runner agree on one serde_json.
pub use serde_json;

pub mod msgpack;

/// Version of the wire contract this crate speaks; recorded in every export's
/// metadata so a host can refuse a plugin it does not understand.
pub const WIRE_VERSION: u32 = 1;

/// A plugin's state between calls, carried across hot reloads when marked
/// `#[plugin_state]` (one per plugin): `COUNTER.with(|c| { c.count += 1; c.count })`.
/// It starts as `T::default()`; a new version of the plugin starts with the
/// serving version's value, if that still decodes as its `T` (wasmforge's
/// `state="keep"|"fresh"|"require"` says what happens when it does not).
pub struct State<T> {
    value: std::sync::Mutex<Option<T>>,
}

impl<T> State<T> {
    pub const fn new() -> Self {
        State { value: std::sync::Mutex::new(None) }
    }
}

impl<T: Default> State<T> {
    /// Runs `f` on the state (made with `T::default()` the first time).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.value.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.get_or_insert_with(T::default))
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Default> State<T> {
    #[doc(hidden)]
    pub fn __save(&self) -> __private::Outcome {
        self.with(|value| __private::ret_json(value))
    }

    #[doc(hidden)]
    pub fn __restore(&self, input: &[u8]) -> __private::Outcome {
        match serde_json::from_slice::<T>(input) {
            Ok(value) => {
                *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                Ok(Vec::new())
            }
            Err(e) => {
                Err(__private::Failure::BadInput(format!("the saved state does not fit this version's state: {}", e)))
            }
        }
    }
}

#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;

    pub use crate::WIRE_VERSION;

    /// Status codes in the result descriptor (docs/ABI.md, "Buffer calls").
    pub const STATUS_OK: u32 = 0;
    pub const STATUS_ERROR: u32 = 1;
    pub const STATUS_BAD_INPUT: u32 = 2;
    pub const STATUS_ERROR_DATA: u32 = 3;

    /// Why a call produced no value.
    #[derive(Debug)]
    pub enum Failure {
        /// The function returned `Err(e)`; carries `e.to_string()`.
        Error(String),
        /// The host sent arguments the function cannot decode.
        BadInput(String),
        /// The function returned `Err(e)` of a serde type: its message, and
        /// `{"message": ..., "data": e}` as JSON for the host.
        ErrorData { message: String, json: String },
    }

    impl Failure {
        pub fn status(&self) -> u32 {
            match self {
                Failure::Error(_) => STATUS_ERROR,
                Failure::BadInput(_) => STATUS_BAD_INPUT,
                Failure::ErrorData { .. } => STATUS_ERROR_DATA,
            }
        }

        /// What went wrong, in words.
        pub fn message(&self) -> &str {
            match self {
                Failure::Error(m) | Failure::BadInput(m) | Failure::ErrorData { message: m, .. } => m,
            }
        }

        /// What the result descriptor points at for this status (docs/ABI.md).
        pub fn wire(&self) -> &str {
            match self {
                Failure::ErrorData { json, .. } => json,
                other => other.message(),
            }
        }
    }

    /// What one call of the generated glue produces: the encoded result bytes.
    pub type Outcome = Result<Vec<u8>, Failure>;

    /// The failure for a function's `Err(e)`. Takes `&dyn Display`, not a generic
    /// `E`, so this is compiled once, optimized, in this crate, instead of once per
    /// error type, unoptimized, in every debug build of the plugin.
    pub fn error(e: &dyn Display) -> Failure {
        Failure::Error(e.to_string())
    }

    /// The failure for `Err(e)` of a serde type: its message and `e` itself as JSON,
    /// which the host hands to Python as `PluginError.data` (docs/ABI.md, status 3).
    pub fn error_data(message: &str, data: Result<String, serde_json::Error>) -> Failure {
        match data {
            Ok(json) => Failure::ErrorData {
                json: format!("{{\"message\":{},\"data\":{}}}", json_string(message), json),
                message: message.to_string(),
            },
            Err(e) => Failure::Error(format!("{} (its data could not be encoded as JSON: {})", message, e)),
        }
    }

    /// `text` as a JSON string, quoted and escaped.
    fn json_string(text: &str) -> String {
        serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
    }

    /// Which failure an `Err(e)` becomes, chosen by what `e` implements ("autoref
    /// specialization": the generated glue calls `(&&&ErrorOf(&e)).failure()`, and
    /// the impl with the most `&`s that applies wins):
    /// - `String`/`&str`: the message alone (status 1), as before;
    /// - `Serialize + Display`: the Display text and `e` as data (status 3);
    /// - `Serialize + Debug`: the Debug text and `e` as data (status 3);
    /// - `Display`: the message alone (status 1).
    pub mod errors {
        use super::{error, error_data, Failure};
        use std::fmt::{Debug, Display};

        pub struct ErrorOf<'a, E>(pub &'a E);

        // Copy whatever E is (it holds a reference), so the by-value tier can take it from behind `&`s.
        impl<E> Clone for ErrorOf<'_, E> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<E> Copy for ErrorOf<'_, E> {}

        pub trait TextError {
            fn failure(self) -> Failure;
        }
        impl TextError for &&&ErrorOf<'_, String> {
            fn failure(self) -> Failure {
                error(self.0)
            }
        }
        impl TextError for &&&ErrorOf<'_, &str> {
            fn failure(self) -> Failure {
                error(self.0)
            }
        }

        pub trait DisplayData {
            fn failure(self) -> Failure;
        }
        impl<E: serde::Serialize + Display> DisplayData for &&ErrorOf<'_, E> {
            fn failure(self) -> Failure {
                error_data(&self.0.to_string(), serde_json::to_string(self.0))
            }
        }

        pub trait DebugData {
            fn failure(self) -> Failure;
        }
        impl<E: serde::Serialize + Debug> DebugData for &ErrorOf<'_, E> {
            fn failure(self) -> Failure {
                error_data(&format!("{:?}", self.0), serde_json::to_string(self.0))
            }
        }

        pub trait DisplayOnly {
            fn failure(self) -> Failure;
        }
        impl<E: Display> DisplayOnly for ErrorOf<'_, E> {
            fn failure(self) -> Failure {
                error(self.0)
            }
        }
    }

    // ---- decoding arguments -------------------------------------------------

    /// A lone `&str`/`String` argument travels as its raw UTF-8 bytes.
    pub fn arg_str<'a>(input: &'a [u8], param: &str) -> Result<&'a str, Failure> {
        std::str::from_utf8(input)
            .map_err(|e| Failure::BadInput(format!("argument `{}` is not valid UTF-8: {}", param, e)))
    }

    /// A lone `String` argument, taking the input bytes themselves: no copy.
    pub fn arg_string(input: Vec<u8>, param: &str) -> Result<String, Failure> {
        String::from_utf8(input)
            .map_err(|e| Failure::BadInput(format!("argument `{}` is not valid UTF-8: {}", param, e.utf8_error())))
    }

    /// Every other argument list travels as one JSON array, one element per
    /// argument. The array is split here, once, and each argument is decoded on
    /// its own: numbers, bools, strings and bytes by [`KnownArg`], compiled in this
    /// crate, the rest by serde. (Decoding the array as one tuple instantiated
    /// serde's sequence code again for every signature, unoptimized, in each debug
    /// build of the plugin.)
    pub fn args_json(input: &[u8], count: usize) -> Result<JsonArgs<'_>, Failure> {
        let text = std::str::from_utf8(input)
            .map_err(|e| Failure::BadInput(format!("the arguments are not valid UTF-8: {}", e)))?;
        let items = split_json_array(text)
            .ok_or_else(|| Failure::BadInput("the arguments are not a JSON array".to_string()))?;
        if items.len() != count {
            return Err(Failure::BadInput(format!("expected {} arguments, got {}", count, items.len())));
        }
        Ok(JsonArgs { items: items.into_iter() })
    }

    /// The text of each element of the JSON array `json`, undecoded, or `None` if
    /// `json` is not one array. Finds only the boundaries, which is all a valid
    /// array needs; whatever is malformed inside an element fails its decoding.
    fn split_json_array(json: &str) -> Option<Vec<&str>> {
        let body = json.trim().strip_prefix('[')?; // so nothing but whitespace was before it
        let mut items = Vec::new();
        let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0usize);
        for (i, byte) in body.bytes().enumerate() {
            if in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth > 0 => depth -= 1,
                b',' if depth == 0 => {
                    items.push(body.get(start..i)?);
                    start = i + 1;
                }
                b']' => {
                    let last = body.get(start..i)?;
                    if !body.get(i + 1..)?.trim().is_empty() {
                        return None;
                    }
                    // `[]` holds no arguments, not one empty one.
                    if !(items.is_empty() && last.trim().is_empty()) {
                        items.push(last);
                    }
                    return Some(items);
                }
                b'}' => return None,
                _ => {}
            }
        }
        None
    }

    /// The arguments of one call, split from their JSON array, taken in order.
    pub struct JsonArgs<'a> {
        items: std::vec::IntoIter<&'a str>,
    }

    impl<'a> JsonArgs<'a> {
        /// The next argument: a number, bool, `String` or `Vec<u8>`.
        pub fn known<T: KnownArg>(&mut self, param: &str) -> Result<T, Failure> {
            T::decode(self.next_json(), param)
        }

        /// The next argument, of any type serde can decode.
        pub fn serde<T: serde::Deserialize<'a>>(&mut self, param: &str) -> Result<T, Failure> {
            match serde_json::from_str(self.next_json()) {
                Ok(value) => Ok(value),
                Err(e) => Err(bad_argument(param, e)),
            }
        }

        fn next_json(&mut self) -> &'a str {
            // args_json checked the count, so the generated code never asks past the end.
            self.items.next().unwrap_or("null")
        }
    }

    /// Argument types decoded by this crate's compiled code, not the plugin's.
    pub trait KnownArg: Sized {
        fn decode(json: &str, param: &str) -> Result<Self, Failure>;
    }

    macro_rules! known_args {
        ($($t:ty),*) => {$(
            impl KnownArg for $t {
                fn decode(json: &str, param: &str) -> Result<Self, Failure> {
                    serde_json::from_str(json).map_err(|e| bad_argument(param, e))
                }
            }
        )*};
    }

    known_args!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool, String, Vec<u8>);

    /// `#[plugin_fn(wire = "msgpack")]`: the argument list is one MessagePack array,
    /// one element per argument, each decoded in turn.
    pub fn args_msgpack(input: &[u8], count: usize) -> Result<MsgpackArgs<'_>, Failure> {
        let mut de = crate::msgpack::Deserializer::new(input);
        match de.array_header() {
            Ok(Some(n)) if n == count => Ok(MsgpackArgs { de }),
            Ok(Some(n)) => Err(Failure::BadInput(format!("expected {} arguments, got {}", count, n))),
            Ok(None) => Err(Failure::BadInput("the arguments are not a MessagePack array".to_string())),
            Err(e) => Err(Failure::BadInput(format!("the arguments are not MessagePack: {}", e))),
        }
    }

    /// The arguments of one MessagePack call, taken in order.
    pub struct MsgpackArgs<'a> {
        de: crate::msgpack::Deserializer<'a>,
    }

    impl<'a> MsgpackArgs<'a> {
        /// The next argument (numbers, strings and bytes too: the name matches [`JsonArgs`]).
        pub fn known<T: serde::Deserialize<'a>>(&mut self, param: &str) -> Result<T, Failure> {
            self.serde(param)
        }

        /// The next argument, of any type serde can decode.
        pub fn serde<T: serde::Deserialize<'a>>(&mut self, param: &str) -> Result<T, Failure> {
            match T::deserialize(&mut self.de) {
                Ok(value) => Ok(value),
                Err(e) => Err(Failure::BadInput(format!("argument `{}`: {}", param, e))),
            }
        }

        /// Error if bytes follow the array.
        pub fn finish(self) -> Result<(), Failure> {
            self.de.end().map_err(|e| Failure::BadInput(format!("the arguments: {}", e)))
        }
    }

    /// A result of a `wire = "msgpack"` function, as MessagePack.
    pub fn ret_msgpack<T: serde::Serialize + ?Sized>(value: &T) -> Outcome {
        match crate::msgpack::to_vec(value) {
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(Failure::Error(format!("result could not be encoded as MessagePack: {}", e))),
        }
    }

    // Error paths are functions of their own, so they are compiled once here and
    // not once per type in the plugin.
    fn bad_argument(param: &str, e: serde_json::Error) -> Failure {
        Failure::BadInput(format!("argument `{}`: {}", param, e))
    }

    fn unencodable_result(e: serde_json::Error) -> Failure {
        Failure::Error(format!("result could not be encoded as JSON: {}", e))
    }

    // ---- encoding results ---------------------------------------------------

    /// Results that travel as raw bytes: strings and byte vectors, moved, not copied.
    pub trait IntoRawBytes {
        fn into_raw_bytes(self) -> Vec<u8>;
    }

    impl IntoRawBytes for String {
        fn into_raw_bytes(self) -> Vec<u8> {
            self.into_bytes()
        }
    }

    impl IntoRawBytes for &str {
        fn into_raw_bytes(self) -> Vec<u8> {
            self.as_bytes().to_vec()
        }
    }

    impl IntoRawBytes for Vec<u8> {
        fn into_raw_bytes(self) -> Vec<u8> {
            self
        }
    }

    impl IntoRawBytes for &[u8] {
        fn into_raw_bytes(self) -> Vec<u8> {
            self.to_vec()
        }
    }

    pub fn ret_raw<T: IntoRawBytes>(value: T) -> Outcome {
        Ok(value.into_raw_bytes())
    }

    pub fn ret_json<T: serde::Serialize + ?Sized>(value: &T) -> Outcome {
        match serde_json::to_vec(value) {
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(unencodable_result(e)),
        }
    }

    /// A number or bool result of a buffer call, as JSON. Implemented here for
    /// each type, so serde_json's and itoa's code for numbers is compiled in this
    /// (optimized) crate rather than again in each debug build of the plugin.
    pub trait NumberResult {
        fn into_outcome(self) -> Outcome;
    }

    macro_rules! number_results {
        ($($t:ty),*) => {$(
            impl NumberResult for $t {
                fn into_outcome(self) -> Outcome {
                    ret_json(&self)
                }
            }
        )*};
    }

    number_results!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool);

    pub fn ret_number<T: NumberResult>(value: T) -> Outcome {
        value.into_outcome()
    }

    pub fn ret_unit(_: ()) -> Outcome {
        Ok(Vec::new())
    }

    // ---- host functions (#[host_fn]) --------------------------------------

    pub fn host_args_json<T: serde::Serialize>(args: &T) -> Vec<u8> {
        serde_json::to_vec(args).expect("host function arguments encode as JSON")
    }

    pub fn host_ret_str(bytes: Vec<u8>, function: &str) -> String {
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("host function {} returned invalid UTF-8: {}", function, e))
    }

    pub fn host_ret_json<T: serde::de::DeserializeOwned>(bytes: &[u8], function: &str) -> T {
        serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!("host function {} returned a value that does not fit its signature: {}", function, e)
        })
    }

    /// Takes ownership of the buffer the host allocated (with `__wf_alloc`) for a host function's result.
    ///
    /// # Safety
    /// `slot` must be `[ptr, len]` as written by the host for a buffer from `__wf_alloc(len)`.
    pub unsafe fn take_host_output(slot: [u32; 2]) -> Vec<u8> {
        let (ptr, len) = (slot[0] as usize as *mut u8, slot[1] as usize);
        if ptr.is_null() || len == 0 {
            Vec::new()
        } else {
            Vec::from_raw_parts(ptr, len, len)
        }
    }

    #[cfg(target_arch = "wasm32")]
    pub use crate::wasm::{call_buffer, call_buffer_owned};

    /// Never called: it makes this crate compile serde_json's code for common
    /// argument and result types. A debug build of the plugin is unoptimized, and
    /// the generic code its functions use would be compiled there, once per
    /// plugin; cargo shares generic code between crates built at opt-level 0, 1
    /// or "s", so the plugin links these optimized copies instead. The linker
    /// drops whatever a plugin does not use.
    pub fn shared_serde_code(input: &[u8]) -> Outcome {
        let mut args = args_json(input, 1)?;
        macro_rules! round_trip {
            ($($t:ty),*) => {$(
                let value: $t = args.serde("value")?;
                ret_json(&value)?;
            )*};
        }
        // Braces: rustfmt leaves a braced macro call as written (one type per line otherwise).
        round_trip! {
            String, bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, char, usize,
            Vec<String>, Vec<i32>, Vec<i64>, Vec<u32>, Vec<u64>, Vec<f64>, Vec<bool>,
            Option<String>, Option<i32>, Option<i64>, Option<u32>, Option<u64>, Option<f64>, Option<bool>
        }
        Ok(Vec::new())
    }
}

/// Host functions outside wasm: the runner and `cargo test` register handlers
/// here, since there is no Python host to call.
#[cfg(not(target_arch = "wasm32"))]
pub mod native {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// Takes the argument bytes and returns the result bytes, encoded as on the
    /// wire (docs/ABI.md): raw for a lone string or bytes, JSON otherwise.
    pub type HostHandler = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

    static HANDLERS: Mutex<Option<BTreeMap<String, HostHandler>>> = Mutex::new(None);

    /// Provides host function `name` to native code.
    pub fn register_host_fn(name: &str, handler: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) {
        let mut handlers = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
        handlers.get_or_insert_with(BTreeMap::new).insert(name.to_string(), Arc::new(handler));
    }

    #[doc(hidden)]
    pub fn call_host_fn(name: &str, input: &[u8]) -> Vec<u8> {
        // Cloned out so a handler may itself call host functions without deadlock.
        let handler = HANDLERS.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|h| h.get(name).cloned());
        match handler {
            Some(handler) => handler(input),
            None => panic!(
                "host function `{}` has no native implementation; register one with wasmforge_pdk::native::register_host_fn",
                name
            ),
        }
    }
}

/// Memory management and the panic hook; exists only in the .wasm build.
#[cfg(target_arch = "wasm32")]
mod wasm {
    use crate::__private::{Failure, Outcome, STATUS_OK};
    use std::alloc::{alloc, dealloc, GlobalAlloc, Layout, System};
    use std::cell::UnsafeCell;

    /// A global for a single-threaded guest: wasm32-unknown-unknown has no threads.
    struct GuestCell<T>(UnsafeCell<T>);
    unsafe impl<T> Sync for GuestCell<T> {}

    /// The last result. It stays alive until the next call into the instance so
    /// the host can read it (the blog series freed it before the host looked).
    static OUTPUT: GuestCell<Vec<u8>> = GuestCell(UnsafeCell::new(Vec::new()));
    /// The reusable input buffer (docs/ABI.md, "Buffer calls"): the host writes a
    /// call's arguments here and calls once. A call takes it out while it runs, so
    /// it is empty (capacity 0) then and a nested call gets a buffer of its own.
    static INPUT: GuestCell<Vec<u8>> = GuestCell(UnsafeCell::new(Vec::new()));
    /// `[status, out_ptr, out_len, in_ptr, in_cap]` of the last call; a buffer call
    /// returns its address. A host that knows only the first three words reads those.
    static DESCRIPTOR: GuestCell<[u32; 5]> = GuestCell(UnsafeCell::new([0; 5]));

    /// `(ptr, len)` of the last `__wf_alloc`: the only buffer a call may take as its own
    /// besides the input buffer (a host of the older protocol allocates, writes, calls).
    static LAST_ALLOC: GuestCell<(usize, usize)> = GuestCell(UnsafeCell::new((0, 0)));

    fn release_output() {
        unsafe { *OUTPUT.0.get() = Vec::new() }
    }

    /// Allocates `len` bytes for the host to write arguments into. Returns 0 when
    /// memory is exhausted (instead of trapping) so the host can say so.
    #[no_mangle]
    pub extern "C" fn __wf_alloc(len: usize) -> *mut u8 {
        release_output();
        if len == 0 {
            return std::ptr::null_mut();
        }
        let ptr = match Layout::from_size_align(len, 1) {
            Ok(layout) => unsafe { alloc(layout) },
            Err(_) => std::ptr::null_mut(),
        };
        unsafe { *LAST_ALLOC.0.get() = (ptr as usize, len) };
        ptr
    }

    /// Makes the input buffer hold at least `len` bytes (it only ever grows) and
    /// returns its address; 0 when memory is exhausted. The host calls it only
    /// when an argument is bigger than the capacity the last descriptor reported.
    #[no_mangle]
    pub extern "C" fn __wf_input(len: usize) -> *mut u8 {
        release_output();
        let input = unsafe { &mut *INPUT.0.get() };
        if len == 0 {
            return std::ptr::null_mut();
        }
        if len > input.capacity() {
            *input = Vec::new(); // freed first, so the allocator can hand its memory back
            if input.try_reserve_exact(len).is_err() {
                return std::ptr::null_mut();
            }
        }
        input.as_mut_ptr()
    }

    /// Frees a buffer from `__wf_alloc` that the host did not pass to a call.
    #[no_mangle]
    pub unsafe extern "C" fn __wf_free(ptr: *mut u8, len: usize) {
        if !ptr.is_null() && len != 0 {
            if *LAST_ALLOC.0.get() == (ptr as usize, len) {
                *LAST_ALLOC.0.get() = (0, 0);
            }
            dealloc(ptr, Layout::from_size_align_unchecked(len, 1));
        }
    }

    /// A call's input bytes, and whether they are the input buffer (`Some(its
    /// capacity)`) rather than an allocation from `__wf_alloc` the call now owns.
    fn take_input(ptr: *mut u8, len: usize) -> Result<(Vec<u8>, Option<usize>), Failure> {
        let buffer = unsafe { &mut *INPUT.0.get() };
        if !ptr.is_null() && buffer.capacity() != 0 && ptr == buffer.as_mut_ptr() {
            let capacity = buffer.capacity();
            if len > capacity {
                return Err(Failure::BadInput(format!(
                    "the host wrote {} bytes into an input buffer of {}",
                    len, capacity
                )));
            }
            let mut input = std::mem::take(buffer);
            // The host wrote `len` bytes there; u8 needs no initialisation beyond that.
            unsafe { input.set_len(len) };
            return Ok((input, Some(capacity)));
        }
        if ptr.is_null() || len == 0 {
            return Ok((Vec::new(), None));
        }
        // Anything else must be the buffer __wf_alloc just made (the protocol before
        // __wf_input): a stale or made-up pointer is refused, never freed as if it were ours.
        let last = unsafe { &mut *LAST_ALLOC.0.get() };
        if *last != (ptr as usize, len) {
            return Err(Failure::BadInput(format!(
                "the host passed {} bytes at {}, which is neither the input buffer nor the last __wf_alloc (a host bug)",
                len, ptr as usize
            )));
        }
        *last = (0, 0);
        // Allocated by __wf_alloc with exactly this layout.
        Ok((unsafe { Vec::from_raw_parts(ptr, len, len) }, None))
    }

    /// Puts the input buffer back after a call: the same one when the call only
    /// borrowed it, else (its bytes were taken as an owned argument) a fresh one of
    /// the same capacity, allocated after the last output was freed, so it reuses
    /// that memory. A nested call may have left a buffer there meanwhile: the larger stays.
    /// Larger input buffers are freed after their call, not kept: an instance that once took a huge
    /// argument does not hold that much memory (twice, with the output) for the rest of its life.
    const KEPT_INPUT: usize = 16 << 20;

    fn restore_input(input: Vec<u8>, capacity: usize) {
        if capacity > KEPT_INPUT {
            return; // `input` is freed here; the next call asks `__wf_input` again
        }
        let buffer = unsafe { &mut *INPUT.0.get() };
        if input.capacity() >= capacity {
            if input.capacity() > buffer.capacity() {
                *buffer = input;
            }
        } else if buffer.capacity() < capacity {
            drop(input);
            *buffer = fresh_buffer(capacity);
        }
    }

    /// An empty Vec of `capacity` bytes, or of none when memory is exhausted: the
    /// call has succeeded, and the host then asks with `__wf_input` (asked of the
    /// System allocator, so no out-of-memory report reaches the host for it).
    fn fresh_buffer(capacity: usize) -> Vec<u8> {
        match Layout::from_size_align(capacity, 1) {
            Ok(layout) => {
                let ptr = unsafe { GlobalAlloc::alloc(&System, layout) };
                if ptr.is_null() {
                    Vec::new()
                } else {
                    // The global allocator is System's, so Vec may free it.
                    unsafe { Vec::from_raw_parts(ptr, 0, capacity) }
                }
            }
            Err(_) => Vec::new(),
        }
    }

    /// Keeps the outcome alive and returns the address of the result descriptor,
    /// which also says where the input buffer now is and how big it is.
    fn finish(outcome: Outcome) -> *const u32 {
        let (status, bytes) = match outcome {
            Ok(bytes) => (STATUS_OK, bytes),
            Err(failure) => (failure.status(), failure.wire().as_bytes().to_vec()),
        };
        unsafe {
            let output = &mut *OUTPUT.0.get();
            *output = bytes;
            let input = &mut *INPUT.0.get();
            let (in_ptr, in_cap) =
                if input.capacity() == 0 { (0, 0) } else { (input.as_ptr() as u32, input.capacity() as u32) };
            *DESCRIPTOR.0.get() = [status, output.as_ptr() as u32, output.len() as u32, in_ptr, in_cap];
            (*DESCRIPTOR.0.get()).as_ptr()
        }
    }

    /// Runs one buffer call whose glue borrows its input: arguments are decoded
    /// from the bytes where the host wrote them.
    pub fn call_buffer(ptr: *mut u8, len: usize, glue: fn(&[u8]) -> Outcome) -> *const u32 {
        release_output();
        let outcome = match take_input(ptr, len) {
            Ok((input, from_buffer)) => {
                let outcome = glue(&input);
                match from_buffer {
                    Some(capacity) => restore_input(input, capacity),
                    None => drop(input),
                }
                outcome
            }
            Err(failure) => Err(failure),
        };
        finish(outcome)
    }

    /// Runs one buffer call whose glue takes its input by value (a lone `Vec<u8>`
    /// or `String` argument): the bytes become the argument without a copy.
    pub fn call_buffer_owned(ptr: *mut u8, len: usize, glue: fn(Vec<u8>) -> Outcome) -> *const u32 {
        release_output();
        let outcome = match take_input(ptr, len) {
            Ok((input, from_buffer)) => {
                let outcome = glue(input);
                if let Some(capacity) = from_buffer {
                    restore_input(Vec::new(), capacity);
                }
                outcome
            }
            Err(failure) => Err(failure),
        };
        finish(outcome)
    }

    #[link(wasm_import_module = "wasmforge")]
    extern "C" {
        /// Hands the host a JSON panic report just before the `unreachable` trap.
        #[link_name = "panic"]
        fn host_panic(ptr: *const u8, len: usize);
        /// Tells the host an allocation failed, before Rust aborts with a bare trap.
        #[link_name = "out_of_memory"]
        fn host_out_of_memory(size: usize);
    }

    /// std's allocator, but an allocation that fails is reported to the host
    /// first, so Python raises PluginMemoryLimit instead of an anonymous trap.
    /// (A plugin that wants another global allocator removes this one.)
    struct ReportingAllocator;

    unsafe impl GlobalAlloc for ReportingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let ptr = GlobalAlloc::alloc(&System, layout);
            if ptr.is_null() {
                host_out_of_memory(layout.size());
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let ptr = GlobalAlloc::alloc_zeroed(&System, layout);
            if ptr.is_null() {
                host_out_of_memory(layout.size());
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            GlobalAlloc::dealloc(&System, ptr, layout)
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let new = GlobalAlloc::realloc(&System, ptr, layout, new_size);
            if new.is_null() {
                host_out_of_memory(new_size);
            }
            new
        }
    }

    #[global_allocator]
    static ALLOCATOR: ReportingAllocator = ReportingAllocator;

    /// Appends `text` to `out` as a JSON string literal. By hand, not with
    /// serde_json: the panic hook is in every plugin, and this is a sixth of the
    /// code serde_json's escaping (with its slicing and error paths) brings along.
    fn push_json_string(out: &mut String, text: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    out.push_str("\\u00");
                    out.push(HEX[(c as usize) >> 4] as char);
                    out.push(HEX[(c as usize) & 0xf] as char);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Called once by the host after instantiation: routes panics to the host
    /// so Python sees the message and file:line instead of a bare trap.
    #[no_mangle]
    pub extern "C" fn __wf_init() {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_string());
            // Written out by hand rather than with serde_json::json!: a Value brings
            // BTreeMap and float formatting into every plugin, which tripled the code
            // wasmtime compiles on each reload of a debug build.
            let mut text = String::from("{\"message\":");
            push_json_string(&mut text, &message);
            if let Some(loc) = info.location() {
                text.push_str(",\"file\":");
                push_json_string(&mut text, loc.file());
                text.push_str(",\"line\":");
                text.push_str(&loc.line().to_string());
                text.push_str(",\"column\":");
                text.push_str(&loc.column().to_string());
            }
            text.push('}');
            unsafe { host_panic(text.as_ptr(), text.len()) }
        }));
    }
}

//! Runs the {{name}} plugin's functions natively: the same Rust and the same
//! generated glue as the .wasm, so ordinary Rust tools (a debugger, println!,
//! backtraces) work, and native and wasm results can be compared.
//!
//!     cargo run -p {{name}}-runner                  # list the functions
//!     cargo run -p {{name}}-runner -- add 1 2       # prints 3
//!
//! Arguments parse as JSON where they can, else as strings, as in `wasmforge call`.

use std::io::Write;
use std::process::ExitCode;
use wasmforge_pdk::serde_json::{self, Value};

pub struct Function {
    /// The JSON record #[plugin_fn] wrote for this function (docs/ABI.md).
    pub metadata: &'static str,
    pub call: fn(&[u8]) -> wasmforge_pdk::__private::Outcome,
}

include!(concat!(env!("OUT_DIR"), "/functions.rs"));

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first() {
        None => {
            for function in FUNCTIONS {
                println!("{}", signature(&meta(function)));
            }
            ExitCode::SUCCESS
        }
        Some(name) => match run(name, &args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("{{name}}-runner: {}", message);
                ExitCode::FAILURE
            }
        },
    }
}

fn meta(function: &Function) -> Value {
    serde_json::from_str(function.metadata).expect("#[plugin_fn] writes valid JSON")
}

fn signature(meta: &Value) -> String {
    let params: Vec<String> = meta["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}", p["name"].as_str().unwrap(), p["type"].as_str().unwrap()))
        .collect();
    format!("{}({}) -> {}", meta["name"].as_str().unwrap(), params.join(", "), meta["returns"].as_str().unwrap())
}

fn run(name: &str, args: &[String]) -> Result<(), String> {
    let (function, meta) = FUNCTIONS
        .iter()
        .map(|f| (f, meta(f)))
        .find(|(_, m)| m["name"] == name)
        .ok_or_else(|| format!("no function `{}`; run without arguments to list them", name))?;
    let params = meta["params"].as_array().unwrap();
    if params.len() != args.len() {
        return Err(format!("{} takes {} argument(s), got {}", signature(&meta), params.len(), args.len()));
    }
    let input = encode_args(meta["input"].as_str().unwrap(), params, args);
    let outcome = std::panic::catch_unwind(|| (function.call)(&input))
        .map_err(|_| "the function panicked (message above)".to_string())?;
    let output = outcome.map_err(|failure| failure.message().to_string())?;
    match meta["output"].as_str().unwrap() {
        "unit" => {}
        "bytes" => std::io::stdout().write_all(&output).map_err(|e| e.to_string())?,
        _ => println!("{}", String::from_utf8_lossy(&output)),
    }
    Ok(())
}

/// The argument bytes the Python host would send (docs/ABI.md, "Buffer calls").
fn encode_args(input_wire: &str, params: &[Value], args: &[String]) -> Vec<u8> {
    match input_wire {
        "none" => Vec::new(),
        "str" | "bytes" => args[0].clone().into_bytes(),
        _ => {
            let values: Vec<Value> = params.iter().zip(args).map(|(p, a)| parse_arg(p, a)).collect();
            serde_json::to_vec(&values).unwrap()
        }
    }
}

/// A text parameter takes the argument as typed; others parse as JSON if they can.
fn parse_arg(param: &Value, arg: &str) -> Value {
    let ty = param["type"].as_str().unwrap_or("");
    if ty == "&str" || ty == "String" {
        return Value::String(arg.to_string());
    }
    serde_json::from_str(arg).unwrap_or_else(|_| Value::String(arg.to_string()))
}

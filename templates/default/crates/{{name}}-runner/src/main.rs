//! Runs the plugins' functions natively: the same Rust and the same generated
//! glue as the .wasm, so ordinary Rust tools (a debugger, println!, backtraces)
//! work, and native and wasm results can be compared.
//!
//!     cargo run -p {{name}}-runner                            # list the functions
//!     cargo run -p {{name}}-runner -- add 1 2                 # prints 3
//!     cargo run -p {{name}}-runner -- -p CRATE add 1 2        # with several plugins exporting add
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

/// A plugin crate this runner depends on (build.rs finds them), by its package name.
pub struct Plugin {
    pub name: &'static str,
    pub functions: &'static [Function],
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The exit status of a call that could not start: no such plugin or function, or an ambiguous one.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut chosen = None;
    if matches!(args.first().map(String::as_str), Some("-p") | Some("--plugin")) {
        if args.len() < 2 {
            return fail(USAGE, format!("{} needs a plugin crate's name", args[0]));
        }
        chosen = Some(args[1].clone());
        args.drain(..2);
    }
    let plugins: Vec<&Plugin> = match &chosen {
        None => PLUGINS.iter().collect(),
        Some(name) => match PLUGINS.iter().find(|p| p.name == name) {
            Some(plugin) => vec![plugin],
            None => return fail(USAGE, format!("no plugin crate {:?}; plugins: {}", name, names(PLUGINS.iter()))),
        },
    };
    match args.first() {
        None => {
            for plugin in &plugins {
                if plugins.len() > 1 {
                    println!("{}:", plugin.name);
                }
                for function in plugin.functions {
                    let indent = if plugins.len() > 1 { "  " } else { "" };
                    println!("{}{}", indent, signature(&meta(function)));
                }
            }
            ExitCode::SUCCESS
        }
        Some(name) => {
            let having: Vec<(&Function, Value)> = plugins
                .iter()
                .flat_map(|p| p.functions.iter())
                .map(|f| (f, meta(f)))
                .filter(|(_, m)| m["name"] == name.as_str())
                .collect();
            if having.len() > 1 {
                let exporting =
                    plugins.iter().copied().filter(|p| p.functions.iter().any(|f| meta(f)["name"] == name.as_str()));
                let message = format!("{} is exported by {}; choose one with -p CRATE", name, names(exporting));
                return fail(USAGE, message);
            }
            match having.into_iter().next() {
                None => fail(USAGE, format!("no function `{}`; run without arguments to list them", name)),
                Some((function, meta)) => match run(function, &meta, &args[1..]) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(message) => fail(1, message),
                },
            }
        }
    }
}

/// One line on stderr: `error: ...` for a call that could not start (as wasmforge says it), else the runner's name.
fn fail(status: u8, message: String) -> ExitCode {
    let who = if status == USAGE { "error" } else { env!("CARGO_PKG_NAME") };
    eprintln!("{}: {}", who, message);
    ExitCode::from(status)
}

fn names<'a>(plugins: impl Iterator<Item = &'a Plugin>) -> String {
    plugins.map(|p| p.name).collect::<Vec<_>>().join(", ")
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

fn run(function: &Function, meta: &Value, args: &[String]) -> Result<(), String> {
    let params = meta["params"].as_array().unwrap();
    if params.len() != args.len() {
        return Err(format!("{} takes {} argument(s), got {}", signature(meta), params.len(), args.len()));
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

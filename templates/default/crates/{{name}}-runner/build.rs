//! Lists every plugin crate the runner depends on, with its `#[plugin_fn]`
//! functions, so the runner can call any of them by name. A plugin crate is a
//! path dependency whose library is a cdylib; `cargo metadata` says which those
//! are, so nothing here names a crate: add one to [dependencies] (as `wasmforge
//! add` does), rename one, and the table follows. Follows `mod x;` into x.rs /
//! x/mod.rs.

use quote::ToTokens;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", manifest.join("Cargo.toml").display());
    let mut table = String::from("pub const PLUGINS: &[Plugin] = &[\n");
    for (package, krate, lib) in plugin_crates(&manifest) {
        let mut functions = Vec::new();
        collect(&lib, &[], &mut functions);
        writeln!(table, "    Plugin {{\n        name: {:?},\n        functions: &[", package).unwrap();
        for path in &functions {
            let (modules, name) = path.split_at(path.len() - 1);
            let prefix: String = modules.iter().map(|m| format!("{}::", m)).collect();
            writeln!(
                table,
                "            Function {{ metadata: {krate}::{prefix}__WF_META_{name}, call: {krate}::{prefix}__wf_call_{name} }},",
                krate = krate,
                prefix = prefix,
                name = name[0],
            )
            .unwrap();
        }
        table.push_str("        ],\n    },\n");
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("plugins.rs");
    std::fs::write(out, table).unwrap();
}

/// (package name, crate name in Rust, library source) of each path dependency whose library is a cdylib.
fn plugin_crates(manifest: &Path) -> Vec<(String, String, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(manifest)
        .output()
        .expect("cargo metadata runs");
    if !output.status.success() {
        panic!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let me = std::env::var("CARGO_PKG_NAME").unwrap();
    let runner = packages.iter().find(|p| p["name"] == me.as_str()).expect("the runner is a workspace member");
    let mut found = Vec::new();
    for dependency in runner["dependencies"].as_array().cloned().unwrap_or_default() {
        let path = match dependency["path"].as_str() {
            Some(path) => PathBuf::from(path),
            None => continue,
        };
        let package = packages
            .iter()
            .find(|p| Path::new(p["manifest_path"].as_str().unwrap_or("")).parent() == Some(path.as_path()));
        let package = match package {
            Some(package) => package,
            None => continue,
        };
        let lib = package["targets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|t| t["kind"].as_array().map_or(false, |kinds| kinds.iter().any(|k| k == "cdylib")));
        if let Some(lib) = lib {
            let name = package["name"].as_str().unwrap().to_string();
            let krate = dependency["rename"].as_str().unwrap_or(&name).replace('-', "_");
            println!("cargo:rerun-if-changed={}", path.join("Cargo.toml").display());
            found.push((name, krate, PathBuf::from(lib["src_path"].as_str().unwrap())));
        }
    }
    found.sort();
    found
}

/// Adds `[module..., fn]` for every `#[plugin_fn]` in the file at `path`.
fn collect(path: &Path, modules: &[String], found: &mut Vec<Vec<String>>) {
    println!("cargo:rerun-if-changed={}", path.display());
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(_) => return,
    };
    let file = match syn::parse_file(&source) {
        Ok(file) => file,
        // The plugin's own build reports the syntax error; say nothing twice.
        Err(_) => return,
    };
    collect_items(&file.items, path, modules, found);
}

fn collect_items(items: &[syn::Item], path: &Path, modules: &[String], found: &mut Vec<Vec<String>>) {
    for item in items {
        match item {
            syn::Item::Fn(function) if is_plugin_fn(&function.attrs) => {
                let mut full = modules.to_vec();
                full.push(function.sig.ident.to_string());
                found.push(full);
            }
            syn::Item::Mod(module) if is_public(&module.vis) => {
                let mut inner = modules.to_vec();
                inner.push(module.ident.to_string());
                match &module.content {
                    Some((_, items)) => collect_items(items, path, &inner, found),
                    None => {
                        let dir = module_dir(path);
                        let name = module.ident.to_string();
                        let file = dir.join(format!("{}.rs", name));
                        let file = if file.exists() { file } else { dir.join(&name).join("mod.rs") };
                        collect(&file, &inner, found);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Where `mod x;` declared in `path` looks for x.rs.
fn module_dir(path: &Path) -> PathBuf {
    let parent = path.parent().unwrap().to_path_buf();
    match path.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs") | Some("mod.rs") | Some("main.rs") => parent,
        _ => parent.join(path.file_stem().unwrap()),
    }
}

fn is_plugin_fn(attrs: &[syn::Attribute]) -> bool {
    // Token text, not attr.path: that field became a method in syn 2.
    attrs.iter().any(|attr| {
        let text = attr.to_token_stream().to_string().replace(' ', "");
        text == "#[plugin_fn]" || text.ends_with("::plugin_fn]")
    })
}

fn is_public(vis: &syn::Visibility) -> bool {
    matches!(vis, syn::Visibility::Public(_))
}

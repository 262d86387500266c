//! Lists the plugin crate's `#[plugin_fn]` functions so the runner can call any
//! of them by name. Follows `mod x;` into x.rs / x/mod.rs.

use quote::ToTokens;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const PLUGIN_CRATE: &str = "example_plugin";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let lib = manifest.join("../example-plugin/src/lib.rs");
    let mut functions = Vec::new();
    collect(&lib, &[], &mut functions);

    let mut table = String::from("pub const FUNCTIONS: &[Function] = &[\n");
    for path in &functions {
        let (modules, name) = path.split_at(path.len() - 1);
        let prefix: String = modules.iter().map(|m| format!("{}::", m)).collect();
        writeln!(
            table,
            "    Function {{ metadata: {crate}::{prefix}__WF_META_{name}, call: {crate}::{prefix}__wf_call_{name} }},",
            crate = PLUGIN_CRATE,
            prefix = prefix,
            name = name[0],
        )
        .unwrap();
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("functions.rs");
    std::fs::write(out, table).unwrap();
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

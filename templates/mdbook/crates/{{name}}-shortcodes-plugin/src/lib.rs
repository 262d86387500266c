//! Step 1 of the chain: expands `:crab:`-style shortcodes in every chapter.

use wasmforge_pdk::plugin_fn;
use wasmforge_pdk::serde_json::Value;

const SHORTCODES: &[(&str, &str)] = &[(":crab:", "🦀"), (":rocket:", "🚀"), (":wave:", "👋")];

/// A book in mdBook's JSON shape in, the same book with shortcodes expanded out.
#[plugin_fn]
pub fn preprocess(mut book: Value) -> Value {
    if let Some(sections) = book.get_mut("sections").and_then(Value::as_array_mut) {
        sections.iter_mut().for_each(expand);
    }
    book
}

/// Expands one book item and, recursively, its sub-chapters.
fn expand(item: &mut Value) {
    // Separators and part titles have no "Chapter".
    let chapter = match item.get_mut("Chapter") {
        Some(chapter) => chapter,
        None => return,
    };
    if let Some(content) = chapter.get_mut("content") {
        if let Some(text) = content.as_str() {
            let expanded = SHORTCODES.iter().fold(text.to_string(), |t, (code, emoji)| t.replace(code, emoji));
            *content = Value::String(expanded);
        }
    }
    if let Some(children) = chapter.get_mut("sub_items").and_then(Value::as_array_mut) {
        children.iter_mut().for_each(expand);
    }
}

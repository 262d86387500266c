//! Step 1 of the chain: expands `:crab:`-style shortcodes in every chapter.

use wasmforge_pdk::plugin_fn;
use wasmforge_pdk::serde_json::Value;

const SHORTCODES: &[(&str, &str)] = &[(":crab:", "🦀"), (":rocket:", "🚀"), (":wave:", "👋")];

/// A book in mdBook's JSON shape in, the same book with shortcodes expanded out.
#[plugin_fn]
pub fn preprocess(mut book: Value) -> Value {
    if let Some(items) = items(&mut book) {
        items.iter_mut().for_each(expand);
    }
    book
}

/// The book's items: mdBook 0.5 calls them "items", mdBook 0.4 called them "sections".
fn items(book: &mut Value) -> Option<&mut Vec<Value>> {
    let key = if book.get("items").is_some() { "items" } else { "sections" };
    book.get_mut(key).and_then(Value::as_array_mut)
}

/// Expands one book item and, recursively, its sub-chapters.
fn expand(item: &mut Value) {
    // Separators ("Separator") and part titles ({"PartTitle": ...}) have no "Chapter".
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

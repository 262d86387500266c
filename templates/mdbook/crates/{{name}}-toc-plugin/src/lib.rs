//! Step 2 of the chain: puts a list of each chapter's sections at its top.
//!
//! It takes the context as well as the book: from mdBook (`wasmforge chain preprocess
//! --mdbook`), the renderer and this preprocessor's table in book.toml, where
//! `sections-title = "..."` names the list; without mdBook, the context is null.

use wasmforge_pdk::plugin_fn;
use wasmforge_pdk::serde_json::Value;

/// A book in mdBook's JSON shape in, each chapter with a list of its sections out.
#[plugin_fn]
pub fn preprocess(context: Value, mut book: Value) -> Value {
    let title = context["options"]["sections-title"].as_str().unwrap_or("Sections").to_string();
    if let Some(items) = items(&mut book) {
        for item in items.iter_mut() {
            add_contents(item, &title);
        }
    }
    book
}

/// The book's items: mdBook 0.5 calls them "items", mdBook 0.4 called them "sections".
fn items(book: &mut Value) -> Option<&mut Vec<Value>> {
    let key = if book.get("items").is_some() { "items" } else { "sections" };
    book.get_mut(key).and_then(Value::as_array_mut)
}

fn add_contents(item: &mut Value, title: &str) {
    // Separators ("Separator") and part titles ({"PartTitle": ...}) have no "Chapter".
    let chapter = match item.get_mut("Chapter") {
        Some(chapter) => chapter,
        None => return,
    };
    if let Some(content) = chapter.get_mut("content") {
        if let Some(text) = content.as_str() {
            let with_contents = contents(text, title);
            *content = Value::String(with_contents);
        }
    }
    if let Some(children) = chapter.get_mut("sub_items").and_then(Value::as_array_mut) {
        for child in children.iter_mut() {
            add_contents(child, title);
        }
    }
}

/// The chapter with a list of its `##` sections after its title, if it has any.
fn contents(markdown: &str, title: &str) -> String {
    let entries: Vec<String> = markdown
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| format!("- [{}](#{})", heading.trim(), anchor(heading.trim())))
        .collect();
    if entries.is_empty() {
        return markdown.to_string();
    }
    let list = format!("**{}**\n\n{}", title, entries.join("\n"));
    match markdown.find('\n') {
        // After the title line; the text after it keeps its own blank line.
        Some(end) if markdown.starts_with("# ") => {
            format!("{}\n\n{}\n\n{}", &markdown[..end], list, markdown[end..].trim_start_matches('\n'))
        }
        _ => format!("{}\n\n{}", list, markdown),
    }
}

/// The anchor mdBook gives a heading: lowercase, spaces to dashes, punctuation dropped.
fn anchor(title: &str) -> String {
    title
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_after_the_title() {
        let out = contents("# Title\n\n## First Part\ntext\n## Second\n", "Sections");
        assert_eq!(out, "# Title\n\n**Sections**\n\n- [First Part](#first-part)\n- [Second](#second)\n\n## First Part\ntext\n## Second\n");
        assert_eq!(contents("no sections", "Sections"), "no sections");
    }
}

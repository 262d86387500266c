//! Step 2 of the chain: puts a list of each chapter's sections at its top.

use wasmforge_pdk::plugin_fn;
use wasmforge_pdk::serde_json::Value;

/// A book in mdBook's JSON shape in, each chapter with a "Sections" list out.
#[plugin_fn]
pub fn preprocess(mut book: Value) -> Value {
    if let Some(sections) = book.get_mut("sections").and_then(Value::as_array_mut) {
        sections.iter_mut().for_each(add_contents);
    }
    book
}

fn add_contents(item: &mut Value) {
    let chapter = match item.get_mut("Chapter") {
        Some(chapter) => chapter,
        None => return,
    };
    if let Some(content) = chapter.get_mut("content") {
        if let Some(text) = content.as_str() {
            let with_contents = contents(text);
            *content = Value::String(with_contents);
        }
    }
    if let Some(children) = chapter.get_mut("sub_items").and_then(Value::as_array_mut) {
        children.iter_mut().for_each(add_contents);
    }
}

/// The chapter with a list of its `##` sections after its title, if it has any.
fn contents(markdown: &str) -> String {
    let entries: Vec<String> = markdown
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|title| format!("- [{}](#{})", title.trim(), anchor(title.trim())))
        .collect();
    if entries.is_empty() {
        return markdown.to_string();
    }
    let list = format!("**Sections**\n\n{}", entries.join("\n"));
    match markdown.find('\n') {
        // After the title line; the text after it keeps its own blank line.
        Some(end) if markdown.starts_with("# ") => format!("{}\n\n{}\n\n{}", &markdown[..end], list, markdown[end..].trim_start_matches('\n')),
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
        let out = contents("# Title\n\n## First Part\ntext\n## Second\n");
        assert_eq!(out, "# Title\n\n**Sections**\n\n- [First Part](#first-part)\n- [Second](#second)\n\n## First Part\ntext\n## Second\n");
        assert_eq!(contents("no sections"), "no sections");
    }
}

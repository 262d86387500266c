//! The second plugin of example-workspace: with example-plugin it makes a
//! chain, like the blog series' mdBook preprocessors (Part 4):
//!
//! ```text
//! wasmforge chain preprocess < chapter.md
//! ```
//!
//! example-plugin expands shortcodes, then this plugin prepends a table of
//! contents built from the Markdown headings.

use wasmforge_pdk::plugin_fn;

/// Markdown in, Markdown out: a "Contents" list of the `#` headings, then the text.
#[plugin_fn]
pub fn preprocess(markdown: String) -> String {
    let entries: Vec<String> = markdown
        .lines()
        .filter_map(|line| {
            let level = line.chars().take_while(|&c| c == '#').count();
            let title = line[level..].trim();
            if level == 0 || level > 6 || title.is_empty() || !line[level..].starts_with(' ') {
                return None;
            }
            Some(format!("{}- [{}](#{})", "  ".repeat(level - 1), title, anchor(title)))
        })
        .collect();
    if entries.is_empty() {
        return markdown;
    }
    format!("**Contents**\n\n{}\n\n{}", entries.join("\n"), markdown)
}

/// The anchor mdBook and GitHub give a heading: lowercase, spaces to dashes.
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
    fn contents_from_headings() {
        let out = preprocess("# Intro\ntext\n## Getting Started!\n".to_string());
        assert!(
            out.starts_with("**Contents**\n\n- [Intro](#intro)\n  - [Getting Started!](#getting-started)\n\n# Intro")
        );
        assert_eq!(preprocess("no headings".to_string()), "no headings");
    }
}

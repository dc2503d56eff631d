//! Config errors that name where they are: the file (or `--policy`), the line, the key, and
//! what would have been valid.

use std::fmt;
use std::ops::Range;

/// One problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in, as the user named it, or `--policy` for a command-line override.
    pub source: String,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// The dotted key the problem is about (`policy.cow`, `charge_set.parent`), when there is one.
    pub key: Option<String>,
    /// What is wrong, and the valid values where there is a list of them.
    pub message: String,
    /// The offending source lines with the span marked (rendered by `annotate-snippets`, as
    /// rustc shows code), when the problem has a span in a file.
    pub excerpt: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one config; loading fails as a whole when there is any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in the order they were found (roughly the order of the file).
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.diagnostics.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Every problem for a person at a terminal: its one-line form, then its source excerpt
    /// (when it has one), so the eye finds the spot in the file.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (index, diagnostic) in self.diagnostics.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push_str(&diagnostic.to_string());
            if let Some(excerpt) = &diagnostic.excerpt {
                out.push('\n');
                out.push_str(excerpt.trim_end());
            }
        }
        out
    }
}

/// The lines of `text` around `span`, the span underlined, with line numbers: the excerpt
/// part of an `annotate-snippets` message (its title line is dropped: the one-line form of the
/// diagnostic says it).
fn excerpt(source_name: &str, text: &str, span: Range<usize>, label: &str) -> Option<String> {
    use annotate_snippets::{Level, Renderer, Snippet};
    let end = span.end.min(text.len());
    let start = span.start.min(end);
    if start == end && text.is_empty() {
        return None;
    }
    let message = Level::Error.title("").snippet(
        Snippet::source(text)
            .origin(source_name)
            .fold(true)
            .annotation(
                Level::Error
                    .span(start..end.max(start + usize::from(start < text.len())))
                    .label(label),
            ),
    );
    let rendered = Renderer::plain().render(message).to_string();
    let mut body: Vec<&str> = rendered.lines().skip(1).collect();
    while body.last().is_some_and(|line| line.trim() == "|") {
        body.pop();
    }
    (!body.is_empty()).then(|| body.join("\n"))
}

/// Collects diagnostics against one source text, turning byte spans into line numbers.
#[derive(Debug)]
pub(crate) struct Diagnostics<'s> {
    source_name: String,
    text: &'s str,
    found: Vec<Diagnostic>,
}

impl<'s> Diagnostics<'s> {
    pub(crate) fn new(source_name: impl Into<String>, text: &'s str) -> Self {
        Self {
            source_name: source_name.into(),
            text,
            found: Vec::new(),
        }
    }

    /// The 1-based line holding byte `offset` of the text.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count()
            + 1
    }

    /// Records a problem at a byte span.
    pub(crate) fn at(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.at_line(Some(line), key, message);
        if let Some(found) = self.found.last_mut() {
            found.excerpt = excerpt(&self.source_name, self.text, span, key);
        }
    }

    /// Records a problem at a line (or none).
    pub(crate) fn at_line(&mut self, line: Option<usize>, key: &str, message: impl Into<String>) {
        self.found.push(Diagnostic {
            source: self.source_name.clone(),
            line,
            key: (!key.is_empty()).then(|| key.to_string()),
            message: message.into(),
            excerpt: None,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Ends collection: `Ok(())` when nothing was found.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                diagnostics: self.found,
            })
        }
    }
}

/// Formats a list of choices for a message: `a, b, c` (or `(none)` when empty).
pub(crate) fn choices<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "(none)".to_string();
    }
    items
        .iter()
        .map(|item| item.as_ref())
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` (did you mean `x`?)` when one of `items` is close to `word` (a misspelling: a small edit
/// distance relative to the word's length), else nothing; for a message naming an unknown word.
pub(crate) fn did_you_mean<S: AsRef<str>>(word: &str, items: &[S]) -> String {
    let best = items
        .iter()
        .map(|item| item.as_ref())
        .filter(|item| *item != word)
        .map(|item| (strsim::damerau_levenshtein(word, item), item))
        .min_by_key(|(distance, _)| *distance);
    match best {
        Some((distance, item)) if distance <= (word.len().max(item.len()) / 3).max(1) => {
            format!(" (did you mean `{item}`?)")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_marks_the_span_on_its_numbered_line() {
        let text = "[run]\nlog = \"loud\"\n";
        let mut diagnostics = Diagnostics::new("x.toml", text);
        let start = text.find("\"loud\"").unwrap();
        diagnostics.at(start..start + 6, "run.log", "unknown value");
        let error = diagnostics.finish().unwrap_err();
        let excerpt = error.diagnostics[0].excerpt.clone().unwrap();
        assert!(excerpt.contains("x.toml:2:7"), "{excerpt}");
        assert!(excerpt.contains("2 | log = \"loud\""), "{excerpt}");
        assert!(excerpt.contains("^^^^^^"), "{excerpt}");
        // The one-line form is unchanged, and the rendering shows both.
        assert_eq!(error.to_string(), "x.toml:2: `run.log`: unknown value");
        assert!(error
            .render()
            .starts_with("x.toml:2: `run.log`: unknown value\n"));
    }
}

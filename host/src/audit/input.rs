//! The objects to audit, read from files, folders and standard input as
//! `kubectl apply -f` reads them, one YAML document at a time: a document
//! that does not parse, or is no object, is reported with its file and line
//! and the others are still audited.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object, and where it was read (`FILE:LINE`).
pub struct Audited {
    /// The object.
    pub object: Value,
    /// `FILE:LINE` of its document (`-` is standard input).
    pub source: String,
}

/// What was read: the objects, and each document or file that could not be.
#[derive(Default)]
pub struct Input {
    /// The objects, in the order read.
    pub objects: Vec<Audited>,
    /// `FILE[:LINE]: why`, for each document or file not read.
    pub errors: Vec<String>,
}

/// Reads `paths` (`-`: standard input).
pub fn read(paths: &[PathBuf]) -> Input {
    let mut input = Input::default();
    for path in paths {
        if path == Path::new("-") {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => input.text("-", &text, false),
                Err(error) => input
                    .errors
                    .push(format!("-: cannot read standard input: {error}")),
            }
            continue;
        }
        let files = match path.is_dir() {
            true => match crate::objects::files_under(path) {
                Ok(files) => files,
                Err(error) => {
                    input.errors.push(crate::text::with_causes(&error));
                    continue;
                }
            },
            false => vec![path.clone()],
        };
        for file in files {
            let name = file.display().to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    let json =
                        file.extension().and_then(|extension| extension.to_str()) == Some("json");
                    input.text(&name, &text, json);
                }
                Err(error) => input.errors.push(format!("{name}: cannot read: {error}")),
            }
        }
    }
    input
}

impl Input {
    /// The documents of `text`, read from `name`.
    fn text(&mut self, name: &str, text: &str, json: bool) {
        if json || text.trim_start().starts_with('{') {
            match serde_json::from_str::<Value>(text) {
                Ok(document) => self.document(name, 1, document),
                Err(error) => self
                    .errors
                    .push(format!("{name}:{}: not JSON: {error}", error.line())),
            }
            return;
        }
        for (line, document) in yaml_documents(text) {
            match serde_saphyr::from_str::<Value>(document) {
                Ok(document) => self.document(name, line, document),
                Err(error) => self.errors.push(format!(
                    "{name}:{line}: the document does not parse: {error}"
                )),
            }
        }
    }

    /// `document`, which starts at `line` of `name`: its objects (a
    /// `List`'s items), or why it has none.
    fn document(&mut self, name: &str, line: usize, document: Value) {
        match crate::objects::flatten(vec![document]) {
            Ok(objects) => self
                .objects
                .extend(objects.into_iter().map(|object| Audited {
                    object,
                    source: format!("{name}:{line}"),
                })),
            Err((_, why)) => self
                .errors
                .push(format!("{name}:{line}: not a Kubernetes object ({why})")),
        }
    }
}

/// The YAML documents of `text`, each with the line it starts on (from 1):
/// split at `---` lines, as the YAML stream separates them.
fn yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let separator = line.trim_end() == "---" || line.starts_with("--- ");
        if separator {
            documents.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = index + 2;
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start..]));
    documents
        .into_iter()
        .filter(|(_, document)| {
            document
                .lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_document_is_reported_with_its_line_and_the_others_read() {
        let text = "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
                    kind: [unclosed\n---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n\
                    - {apiVersion: v1, kind: Pod, metadata: {name: b}}\n---\nplain: mapping\n";
        let mut input = Input::default();
        input.text("app.yaml", text, false);
        let read: Vec<(&str, &str)> = input
            .objects
            .iter()
            .map(|audited| {
                (
                    audited.object["metadata"]["name"].as_str().unwrap(),
                    audited.source.as_str(),
                )
            })
            .collect();
        assert_eq!(read, [("a", "app.yaml:1"), ("b", "app.yaml:10")]);
        assert_eq!(input.errors.len(), 2, "{:?}", input.errors);
        assert!(
            input.errors[0].starts_with("app.yaml:6: the document does not parse"),
            "{:?}",
            input.errors
        );
        assert!(
            input.errors[1].starts_with("app.yaml:15: not a Kubernetes object (no apiVersion)"),
            "{:?}",
            input.errors
        );
    }
}

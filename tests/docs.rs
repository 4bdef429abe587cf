//! The documentation cannot drift: every relative link in README, the
//! book and the other top-level pages resolves (file and heading), every
//! page of the book is in its summary, README stays short, and the flags
//! table is `wicket serve --help`'s. (The metrics table is checked against
//! a real scrape in tests/monitoring.rs; `mdbook build` runs in CI.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wicket_tests::{run_wicket, workspace_root};

/// README's length at most, in lines: one screen or two, the rest is in the book.
const README_LINES: usize = 200;

fn book() -> PathBuf {
    workspace_root().join("docs/src")
}

fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            found.push(path);
        }
    }
}

/// Every page checked for links: the book's and the top-level ones.
fn pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    markdown_files(&book(), &mut pages);
    for top in ["README.md", "BENCHMARKS.md", "RELIABILITY.md"] {
        pages.push(workspace_root().join(top));
    }
    pages.sort();
    pages
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The anchor mdBook and GitHub give a heading: lower case, spaces as `-`,
/// other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap();
    prose(&text)
        .into_iter()
        .filter_map(|line| {
            line.trim_start_matches('#')
                .strip_prefix(' ')
                .filter(|_| line.starts_with('#'))
        })
        .map(anchor)
        .collect()
}

/// The targets of the inline links `[text](target)` in `line`.
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(&after[..end]);
        rest = &after[end..];
    }
    targets
}

#[test]
fn every_relative_link_resolves_to_a_file_and_heading() {
    let mut dead = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for line in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                checked += 1;
                let (file, heading) = target.split_once('#').unwrap_or((target, ""));
                let resolved = match file {
                    "" => page.clone(),
                    file => page.parent().unwrap().join(file),
                };
                let found = resolved.exists()
                    && (heading.is_empty()
                        || resolved.extension().is_none_or(|ext| ext != "md")
                        || anchors(&resolved).contains(heading));
                if !found {
                    dead.push(format!("{}: {target}", page.display()));
                }
            }
        }
    }
    assert!(checked > 100, "{checked} links checked");
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn every_page_of_the_book_is_in_its_summary() {
    let summary = std::fs::read_to_string(book().join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<PathBuf> = link_targets(&summary.replace('\n', " "))
        .into_iter()
        .filter(|target| !target.is_empty())
        .map(|target| book().join(target))
        .collect();
    let mut pages = Vec::new();
    markdown_files(&book(), &mut pages);
    for page in pages {
        if page.file_name().unwrap() != "SUMMARY.md" {
            assert!(
                listed.contains(&page),
                "{} is not in SUMMARY.md",
                page.display()
            );
        }
    }
    for page in &listed {
        assert!(page.exists(), "SUMMARY.md lists {}", page.display());
    }
}

#[test]
fn the_readme_fits_a_screen_or_two_and_keeps_its_two_commands() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= README_LINES, "README has {lines} lines");
    for command in ["scripts/serve ", "scripts/test "] {
        assert!(
            readme.lines().any(|line| line.starts_with(command)),
            "README's quick start lost {command}"
        );
    }
}

/// `(flag, default)` for each option in `wicket serve --help`.
fn help_flags() -> BTreeSet<(String, String)> {
    let (code, help, stderr) = run_wicket(&["serve", "--help"]);
    assert_eq!(code, Some(0), "{stderr}");
    let mut flags = BTreeSet::new();
    let mut current: Option<(String, String)> = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let flag = trimmed
            .split_whitespace()
            .find(|word| word.starts_with("--"))
            .filter(|_| (2..=6).contains(&indent));
        if let Some(flag) = flag {
            flags.extend(current.take());
            current = Some((flag.trim_end_matches(',').to_owned(), String::new()));
        } else if let Some((_, default)) = current.as_mut()
            && let Some((_, after)) = trimmed.split_once("[default: ")
        {
            *default = after.split(']').next().unwrap().to_owned();
        }
    }
    flags.extend(current);
    flags.retain(|(flag, _)| flag != "--help");
    flags
}

/// `(flag, default)` for each row of the flags page's table.
fn documented_flags() -> BTreeSet<(String, String)> {
    let page = std::fs::read_to_string(book().join("operating/flags.md")).unwrap();
    page.lines()
        .filter(|line| line.starts_with("| `--"))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let flag = cells[0]
                .trim_start_matches("| `")
                .split('`')
                .next()
                .unwrap();
            let default = cells[1].trim().trim_matches('`');
            (flag.to_owned(), default.to_owned())
        })
        .collect()
}

#[test]
fn the_flags_table_is_what_wicket_serve_help_says() {
    let help = help_flags();
    assert!(help.len() >= 30, "{help:?}");
    assert_eq!(
        documented_flags(),
        help,
        "docs/src/operating/flags.md against --help"
    );
}

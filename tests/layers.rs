//! Fails on an import cycle between two files of one crate, anywhere in the
//! workspace: README promises layers where a file only reaches down.
//!
//! The edges are read from the source as the compiler resolves them, not
//! only from `use crate::` lines: `super::` and `self::` paths, paths to
//! child modules, inline paths in code, paths inside macros such as
//! `bindgen!`'s `with:` table, grouped `use` trees, and a name re-exported
//! by a `mod.rs` followed to the file that defines it. Comments and strings
//! are not edges; test modules are (they compile into the same crate).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One module: a file, or an inline `mod name { ... }` inside one.
struct Module {
    file: usize,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    /// Names bound by `use` in this module, to the path they name.
    uses: BTreeMap<String, Vec<String>>,
}

/// A path as written, where it was written.
struct Reference {
    module: usize,
    segments: Vec<String>,
    line: usize,
}

/// One crate's modules and the paths its files write.
#[derive(Default)]
struct Tree {
    files: Vec<PathBuf>,
    modules: Vec<Module>,
    references: Vec<Reference>,
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources = Vec::new();
    for top in ["host", "plugins", "tests"] {
        collect_sources(&workspace.join(top), &mut sources);
    }
    let cycles = find_cycles(&workspace, &sources);
    assert!(
        cycles.is_empty(),
        "import cycles between files (each edge: file:line of the path → the file it names):\n{}",
        cycles.join("\n")
    );
}

/// The checker itself: a cycle made the ways this crate's history made them
/// (a `with:` value in a macro, an inline `crate::` path, `super::`, a
/// re-export followed to its file) is found, and a tree without one passes.
#[test]
fn the_check_sees_macro_inline_super_and_reexported_edges() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "src/lib.rs",
        "mod a;\nmod b;\nmod p;\nmod __private { pub use crate::b::Thing; }\n",
    );
    write(
        "src/a.rs",
        "// crate::b::Thing in a comment is no edge, \"crate::b\" in a string neither\n\
         bindgen!({ with: { \"x\": crate::p::Doc } });\n",
    );
    write("src/p/mod.rs", "mod doc;\npub use doc::Doc;\n");
    write(
        "src/p/doc.rs",
        "pub struct Doc(super::super::a::Generated);\n",
    );
    // Through an inline module's re-export, back to the file itself: no edge.
    write(
        "src/b.rs",
        "pub struct Thing;\npub fn thing() -> crate::__private::Thing { Thing }\n",
    );
    let sources = vec![
        dir.path().join("src/lib.rs"),
        dir.path().join("src/a.rs"),
        dir.path().join("src/p/mod.rs"),
        dir.path().join("src/p/doc.rs"),
        dir.path().join("src/b.rs"),
    ];
    let cycles = find_cycles(dir.path(), &sources);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].contains("src/a.rs:2 → src/p/doc.rs"),
        "{}",
        cycles[0]
    );
    assert!(
        cycles[0].contains("src/p/doc.rs:1 → src/a.rs"),
        "{}",
        cycles[0]
    );

    write("src/p/doc.rs", "pub struct Doc;\n");
    assert_eq!(find_cycles(dir.path(), &sources), Vec::<String>::new());
}

/// Every `.rs` file under `dir`, leaving out build output.
fn collect_sources(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect_sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// Each cycle found, as its edges with where each is written. A file no
/// other file declares with `mod` is a crate root; each root's tree is
/// checked on its own.
fn find_cycles(base: &Path, sources: &[PathBuf]) -> Vec<String> {
    let declared: BTreeSet<PathBuf> = sources
        .iter()
        .flat_map(|file| {
            let text = code_only(&std::fs::read_to_string(file).unwrap_or_default());
            child_files(file, &text)
        })
        .collect();
    let mut cycles = Vec::new();
    for root in sources.iter().filter(|file| !declared.contains(*file)) {
        let tree = Tree::read(root);
        let edges = tree.edges();
        for component in strongly_connected(tree.files.len(), &edges) {
            let members: BTreeSet<usize> = component.iter().copied().collect();
            let mut text = String::new();
            for (&(from, to), lines) in &edges {
                if members.contains(&from) && members.contains(&to) {
                    let shown = |file: usize| {
                        let path = &tree.files[file];
                        path.strip_prefix(base)
                            .unwrap_or(path)
                            .display()
                            .to_string()
                    };
                    let _ = writeln!(text, "  {}:{} → {}", shown(from), lines[0], shown(to));
                }
            }
            cycles.push(text);
        }
    }
    cycles
}

impl Tree {
    /// Reads the crate whose root file is `root`, following `mod` declarations.
    fn read(root: &Path) -> Tree {
        let mut tree = Tree::default();
        tree.add_file(root.to_path_buf(), None, None);
        tree
    }

    fn add_file(&mut self, path: PathBuf, parent: Option<usize>, name: Option<String>) {
        let Ok(raw) = std::fs::read_to_string(&path) else {
            return;
        };
        let text = code_only(&raw);
        let file = self.files.len();
        self.files.push(path.clone());
        let module = self.add_module(file, parent, name);
        self.read_body(&path, &text, module);
    }

    fn add_module(&mut self, file: usize, parent: Option<usize>, name: Option<String>) -> usize {
        let id = self.modules.len();
        self.modules.push(Module {
            file,
            parent,
            children: BTreeMap::new(),
            uses: BTreeMap::new(),
        });
        if let (Some(parent), Some(name)) = (parent, name) {
            self.modules[parent].children.insert(name, id);
        }
        id
    }

    /// Walks one file's text: inline modules open and close scopes, `mod x;`
    /// brings in a file, and every path is recorded in the scope it is in.
    fn read_body(&mut self, path: &Path, text: &str, module: usize) {
        let chars: Vec<char> = text.chars().collect();
        // The modules open at each brace depth, innermost last.
        let mut scopes: Vec<(usize, usize)> = vec![(module, 0)];
        let mut depth = 0usize;
        let mut line = 1usize;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\n' => line += 1,
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    while scopes.len() > 1 && scopes.last().is_some_and(|s| s.1 > depth) {
                        scopes.pop();
                    }
                }
                _ => {}
            }
            let starts_word = is_ident(c) && (i == 0 || !is_ident(chars[i - 1]));
            let word = ident_at(&chars, i);
            if !starts_word || word.is_empty() || (i > 0 && chars[i - 1] == '$') {
                i += 1;
                continue;
            }
            let scope = scopes.last().map_or(module, |s| s.0);
            if word == "mod" {
                let after = skip_space(&chars, i + 3, &mut line);
                let name = ident_at(&chars, after);
                let next = skip_space(&chars, after + name.len(), &mut line);
                match chars.get(next) {
                    Some('{') if !name.is_empty() => {
                        let file = self.modules[scope].file;
                        let inline = self.add_module(file, Some(scope), Some(name));
                        depth += 1;
                        scopes.push((inline, depth));
                        i = next + 1;
                        continue;
                    }
                    Some(';') if !name.is_empty() && scope == module => {
                        if let Some(child) = child_file(path, &name) {
                            self.add_file(child, Some(module), Some(name));
                        }
                        i = next + 1;
                        continue;
                    }
                    _ => {}
                }
            }
            let is_use = word == "use";
            let start = if is_use {
                skip_space(&chars, i + 3, &mut line)
            } else {
                i
            };
            let begin_line = line;
            let (end, leaves) = parse_tree(&chars, start, &mut line);
            if leaves.iter().any(|leaf| leaf.path.len() > 1) || is_use {
                for leaf in leaves {
                    if is_use && let Some(binding) = leaf.binding.clone() {
                        self.modules[scope].uses.insert(binding, leaf.path.clone());
                    }
                    self.references.push(Reference {
                        module: scope,
                        segments: leaf.path,
                        line: begin_line,
                    });
                }
                i = end.max(i + 1);
            } else {
                i += word.len();
            }
        }
    }

    /// File-to-file edges with the lines that make each.
    fn edges(&self) -> BTreeMap<(usize, usize), Vec<usize>> {
        let mut edges: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for reference in &self.references {
            let Some(target) = self.resolve(reference.module, &reference.segments, 0) else {
                continue;
            };
            let from = self.modules[reference.module].file;
            let to = self.modules[target].file;
            if from != to {
                edges.entry((from, to)).or_default().push(reference.line);
            }
        }
        edges
    }

    /// The module a path written in `module` ends up in, following `use`
    /// re-exports; `None` for a path into another crate.
    fn resolve(&self, module: usize, segments: &[String], hops: usize) -> Option<usize> {
        if hops > 16 || segments.is_empty() {
            return None;
        }
        let mut current = match segments[0].as_str() {
            "crate" => self.root_of(module),
            "self" => module,
            "super" => self.modules[module].parent?,
            first => match self.modules[module].children.get(first) {
                Some(&child) => child,
                None => {
                    let named = self.modules[module].uses.get(first)?;
                    let mut path = named.clone();
                    path.extend(segments[1..].iter().cloned());
                    return self.resolve(module, &path, hops + 1);
                }
            },
        };
        for (index, segment) in segments.iter().enumerate().skip(1) {
            if segment == "super" {
                current = self.modules[current].parent?;
            } else if let Some(&child) = self.modules[current].children.get(segment) {
                current = child;
            } else if let Some(named) = self.modules[current].uses.get(segment) {
                let mut path = named.clone();
                path.extend(segments[index + 1..].iter().cloned());
                return self.resolve(current, &path, hops + 1).or(Some(current));
            } else {
                break;
            }
        }
        Some(current)
    }

    fn root_of(&self, mut module: usize) -> usize {
        while let Some(parent) = self.modules[module].parent {
            module = parent;
        }
        module
    }
}

/// One leaf of a path or `use` tree: the whole path, and the name it binds.
struct Leaf {
    path: Vec<String>,
    binding: Option<String>,
}

/// Parses `a::b::{c, d::e as f, self}` from `start`; returns where it ended
/// and its leaves. A lone identifier is a one-segment leaf.
fn parse_tree(chars: &[char], start: usize, line: &mut usize) -> (usize, Vec<Leaf>) {
    let mut prefix = Vec::new();
    let mut i = start;
    loop {
        let word = ident_at(chars, i);
        if word.is_empty() {
            if chars.get(i) == Some(&'{') && !prefix.is_empty() {
                let mut leaves = Vec::new();
                i += 1;
                loop {
                    i = skip_space(chars, i, line);
                    match chars.get(i) {
                        Some('}') => return (i + 1, leaves),
                        Some(',') => i += 1,
                        None => return (i, leaves),
                        _ => {
                            let (end, inner) = parse_tree(chars, i, line);
                            for leaf in inner {
                                let self_only = leaf.path == ["self"];
                                let mut path = prefix.clone();
                                if !self_only {
                                    path.extend(leaf.path);
                                }
                                let binding = match self_only {
                                    true => prefix.last().cloned(),
                                    false => leaf.binding,
                                };
                                leaves.push(Leaf { path, binding });
                            }
                            i = end.max(i + 1);
                        }
                    }
                }
            }
            if chars.get(i) == Some(&'*') {
                return (
                    i + 1,
                    vec![Leaf {
                        path: prefix,
                        binding: None,
                    }],
                );
            }
            return (i, Vec::new());
        }
        prefix.push(word.clone());
        i += word.len();
        let after = skip_space(chars, i, line);
        if chars.get(after) == Some(&':') && chars.get(after + 1) == Some(&':') {
            i = skip_space(chars, after + 2, line);
            continue;
        }
        let mut binding = prefix.last().cloned();
        if ident_at(chars, after) == "as" {
            let alias_at = skip_space(chars, after + 2, line);
            let alias = ident_at(chars, alias_at);
            i = alias_at + alias.len();
            binding = (alias != "_").then_some(alias);
        }
        return (
            i,
            vec![Leaf {
                path: prefix,
                binding,
            }],
        );
    }
}

/// The file a `mod name;` in `file` names, if it exists.
fn child_file(file: &Path, name: &str) -> Option<PathBuf> {
    let stem = file.file_stem()?.to_str()?;
    let dir = file.parent()?;
    let dir = match stem {
        "lib" | "main" | "mod" => dir.to_path_buf(),
        // A crate root outside src/ (a test or bench target) owns its folder too.
        _ if !dir.ends_with("src") && !is_module_file(file) => dir.to_path_buf(),
        _ => dir.join(stem),
    };
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|candidate| candidate.exists())
}

/// Whether `file` sits in its parent folder as a module of a `mod.rs`,
/// `lib.rs` or `main.rs` there (rather than being a crate root itself).
fn is_module_file(file: &Path) -> bool {
    let Some(dir) = file.parent() else {
        return false;
    };
    let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else {
        return false;
    };
    ["mod.rs", "lib.rs", "main.rs"].iter().any(|owner| {
        std::fs::read_to_string(dir.join(owner)).is_ok_and(|text| {
            let text = code_only(&text);
            child_names(&text).iter().any(|name| name == stem)
        })
    })
}

/// The files that `mod name;` declarations in `file` bring in.
fn child_files(file: &Path, text: &str) -> Vec<PathBuf> {
    child_names(text)
        .iter()
        .filter_map(|name| child_file(file, name))
        .collect()
}

/// The names of `mod name;` declarations (not inline modules).
fn child_names(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut names = Vec::new();
    let mut line = 0;
    let mut i = 0;
    while i < chars.len() {
        if is_ident(chars[i]) && (i == 0 || !is_ident(chars[i - 1])) {
            let word = ident_at(&chars, i);
            if word == "mod" {
                let after = skip_space(&chars, i + 3, &mut line);
                let name = ident_at(&chars, after);
                let next = skip_space(&chars, after + name.len(), &mut line);
                if !name.is_empty() && chars.get(next) == Some(&';') {
                    names.push(name);
                }
            }
            i += word.len().max(1);
        } else {
            i += 1;
        }
    }
    names
}

/// Tarjan's strongly connected components with more than one file.
fn strongly_connected(
    nodes: usize,
    edges: &BTreeMap<(usize, usize), Vec<usize>>,
) -> Vec<Vec<usize>> {
    struct State {
        next: usize,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on_stack: Vec<bool>,
        found: Vec<Vec<usize>>,
    }
    fn visit(node: usize, out: &[Vec<usize>], state: &mut State) {
        state.index[node] = Some(state.next);
        state.low[node] = state.next;
        state.next += 1;
        state.stack.push(node);
        state.on_stack[node] = true;
        for &to in &out[node] {
            match state.index[to] {
                None => {
                    visit(to, out, state);
                    state.low[node] = state.low[node].min(state.low[to]);
                }
                Some(index) if state.on_stack[to] => {
                    state.low[node] = state.low[node].min(index);
                }
                Some(_) => {}
            }
        }
        if Some(state.low[node]) == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack[member] = false;
                component.push(member);
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                state.found.push(component);
            }
        }
    }
    let mut out = vec![Vec::new(); nodes];
    for &(from, to) in edges.keys() {
        out[from].push(to);
    }
    let mut state = State {
        next: 0,
        index: vec![None; nodes],
        low: vec![0; nodes],
        stack: Vec::new(),
        on_stack: vec![false; nodes],
        found: Vec::new(),
    };
    for node in 0..nodes {
        if state.index[node].is_none() {
            visit(node, &out, &mut state);
        }
    }
    state.found
}

/// The code alone: comments, strings and character literals blanked to
/// spaces (newlines kept, so lines still count), since none holds a path.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, from: &[char]| {
        out.extend(from.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let mut i = 0;
    while i < chars.len() {
        let end = match (chars[i], chars.get(i + 1).copied()) {
            ('/', Some('/')) => i + chars[i..].iter().take_while(|&&c| c != '\n').count(),
            ('/', Some('*')) => block_comment_end(&chars, i),
            ('r', Some('#' | '"')) if i == 0 || !is_ident(chars[i - 1]) => {
                raw_string_end(&chars, i).unwrap_or(i)
            }
            ('"', _) => {
                let mut ignored = 0;
                skip_string(&chars, i, &mut ignored)
            }
            // A character literal ('x', '\n', '"'), not a lifetime ('a).
            ('\'', Some('\\')) => chars[i + 2..]
                .iter()
                .position(|&c| c == '\'')
                .map_or(chars.len(), |p| i + 3 + p),
            ('\'', Some(_)) if chars.get(i + 2) == Some(&'\'') => i + 3,
            _ => i,
        };
        if end > i {
            blank(&mut out, &chars[i..end]);
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Where the (possibly nested) block comment starting at `start` ends.
fn block_comment_end(chars: &[char], start: usize) -> usize {
    let mut nesting = 0;
    let mut i = start;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            nesting += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            nesting -= 1;
            i += 2;
            if nesting == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Where the raw string `r#"..."#` starting at `start` ends, if it is one.
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    let hashes = chars[start + 1..].iter().take_while(|&&c| c == '#').count();
    let open = start + 1 + hashes;
    if chars.get(open) != Some(&'"') {
        return None;
    }
    let closes =
        |at: usize| chars[at] == '"' && (1..=hashes).all(|k| chars.get(at + k) == Some(&'#'));
    let close = (open + 1..chars.len()).find(|&at| closes(at))?;
    Some(close + 1 + hashes)
}

/// Where the string starting at `start` (a `"`) ends, counting its lines.
fn skip_string(chars: &[char], start: usize, line: &mut usize) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

fn skip_space(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        if chars[i] == '\n' {
            *line += 1;
        }
        i += 1;
    }
    i
}

fn ident_at(chars: &[char], i: usize) -> String {
    if chars
        .get(i)
        .is_none_or(|c| !is_ident(*c) || c.is_ascii_digit())
    {
        return String::new();
    }
    chars[i..].iter().take_while(|c| is_ident(**c)).collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

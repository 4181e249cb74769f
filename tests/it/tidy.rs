//! ARCHITECTURE.md's rules that a test can hold: each outside library is named only in the
//! modules its table gives ("one adapter per outside library").

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The "Outside libraries" table: each library's crate name (as code names it) and the
/// modules allowed to name it.
fn table() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section = text
        .split("## Outside libraries")
        .nth(1)
        .expect("ARCHITECTURE.md has an 'Outside libraries' section");
    let mut rows = Vec::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 2 || cells[0] == "library" || cells[0].starts_with("---") {
            continue;
        }
        let modules: Vec<String> = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        for lib in cells[0].split(',') {
            rows.push((lib.trim().replace('-', "_"), modules.clone()));
        }
    }
    assert!(rows.len() >= 10, "the table was not read: {rows:?}");
    rows
}

/// Every `.rs` file under `dir` with its module path (`audio::codec`, `store`, `crate`).
fn sources(dir: &Path, module: &str, out: &mut Vec<(String, PathBuf)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let join = |m: &str| {
            if module.is_empty() {
                m.to_string()
            } else {
                format!("{module}::{m}")
            }
        };
        if path.is_dir() {
            sources(&path, &join(&name), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let m = match name.as_str() {
                "mod" => module.to_string(),
                "lib" | "main" if module.is_empty() => "crate".to_string(),
                _ => join(&name),
            };
            out.push((m, path));
        }
    }
}

/// The byte span of the inline module `mod NAME { ... }` in `text`, if there is one.
fn inline_module(text: &str, name: &str) -> Option<std::ops::Range<usize>> {
    let start = text.find(&format!("mod {name} {{"))?;
    let open = start + text[start..].find('{')?;
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(start..open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether the use at `at` in the file of module `file_module` lies in `allowed`.
fn inside(allowed: &str, file_module: &str, text: &str, at: usize) -> bool {
    if file_module == allowed || file_module.starts_with(&format!("{allowed}::")) {
        return true;
    }
    // An inline module of this file (`purge::fs` in src/purge.rs).
    match allowed.strip_prefix(&format!("{file_module}::")) {
        Some(inner) if !inner.contains("::") => {
            inline_module(text, inner).is_some_and(|span| span.contains(&at))
        }
        _ => false,
    }
}

#[test]
fn each_outside_library_is_named_only_by_its_adapter() {
    let rows = table();
    let mut files = Vec::new();
    sources(&root().join("src"), "", &mut files);
    assert!(files.len() > 30);
    let mut wrong = Vec::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for (lib, allowed) in &rows {
            for needle in [format!("{lib}::"), format!("use {lib}")] {
                for (at, _) in text.match_indices(&needle) {
                    // Only where the name starts (not `my_sled::`) and outside comments.
                    let before = text[..at].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    if text[line_start..at].trim_start().starts_with("//") {
                        continue;
                    }
                    if !allowed.iter().any(|m| inside(m, module, &text, at)) {
                        let line = text[..at].lines().count();
                        wrong.push(format!(
                            "{}:{line}: {lib} in `{module}` (allowed: {allowed:?})",
                            path.strip_prefix(root()).unwrap().display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "outside libraries named outside their adapters (ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_inline_module_rule_sees_the_module_and_nothing_else() {
    let text = "fn a() { x::y(); }\nmod fs {\n    fn b() { x::y(); }\n}\nfn c() { x::y(); }\n";
    let uses: Vec<usize> = text.match_indices("x::").map(|(i, _)| i).collect();
    let verdicts: Vec<bool> = uses
        .iter()
        .map(|&at| inside("purge::fs", "purge", text, at))
        .collect();
    assert_eq!(verdicts, [false, true, false]);
    assert!(inside("cli", "cli::admin", text, 0));
    assert!(!inside("cli", "client", text, 0));
}

//! The operator's modules form layers: no module imports one that imports it back, at the level
//! of top-level modules (`desired` as one) and of files (`desired::api` as one). Read from the
//! sources: every `crate::…` path, every `super::…` path of a submodule and every `child::…`
//! path of a `mod.rs`, outside comments and the `#[cfg(test)]` modules at the end of a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module path of each non-test source file, and its text without comments and tests.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                walk(&path, &format!("{prefix}{name}::"), out);
                continue;
            }
            if name.ends_with("_tests") || ["main", "lib", "test_support"].contains(&name.as_str())
            {
                continue;
            }
            let module = match name.as_str() {
                "mod" => prefix.trim_end_matches("::").to_string(),
                _ => format!("{prefix}{name}"),
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = without_tests(&text)
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(module, code);
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut out,
    );
    out
}

/// `text` without its `#[cfg(test)] mod tests { … }` block (rustfmt puts its closing brace,
/// and only that one, at the start of a line).
fn without_tests(text: &str) -> String {
    let Some(start) = text.find("#[cfg(test)]\nmod tests {") else {
        return text.to_string();
    };
    match text[start..].find("\n}") {
        Some(end) => format!("{}{}", &text[..start], &text[start + end + 2..]),
        None => text[..start].to_string(),
    }
}

/// The paths (`a::b::c`) that follow `prefix` in `code`, braces expanded one level.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let is_path = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let head: String = rest.chars().take_while(|c| is_path(*c)).collect();
        let after = &rest[head.len()..];
        if (head.is_empty() || head.ends_with("::")) && after.starts_with('{') {
            let inner = &after[1..after.find('}').unwrap_or(after.len())];
            for item in inner.split(',') {
                let item: String = item.trim().chars().take_while(|c| is_path(*c)).collect();
                out.push(format!("{head}{item}"));
            }
        } else {
            out.push(head);
        }
    }
    out
}

/// The longest module of `modules` that `path` (from the crate root) names.
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn file_graph() -> Graph {
    let sources = sources();
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, code) in &sources {
        let parent = module.rsplit_once("::").map(|(p, _)| p.to_string());
        let mut targets: Vec<String> = paths_after(code, "crate::");
        if let Some(parent) = &parent {
            targets.extend(
                paths_after(code, "super::")
                    .iter()
                    .map(|p| format!("{parent}::{p}")),
            );
        }
        let children = modules
            .iter()
            .filter(|m| m.rsplit_once("::").map(|(p, _)| p) == Some(module.as_str()));
        for child in children {
            let name = child.rsplit("::").next().unwrap();
            if !paths_after(code, &format!("{name}::")).is_empty() {
                targets.push(child.clone());
            }
        }
        let edges = graph.entry(module.clone()).or_default();
        for target in targets.iter().filter_map(|t| resolve(t, &modules)) {
            if target != *module {
                edges.insert(target);
            }
        }
    }
    graph
}

/// The graph with every module collapsed into its top-level module.
fn top_level(graph: &Graph) -> Graph {
    let top = |m: &str| m.split("::").next().unwrap().to_string();
    let mut out = Graph::new();
    for (from, tos) in graph {
        let edges = out.entry(top(from)).or_default();
        edges.extend(tos.iter().map(|t| top(t)).filter(|t| *t != top(from)));
    }
    out
}

/// A cycle of `graph`, if it has one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some([&path[at..], &[node.to_string()]].concat());
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, done, path) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let files = file_graph();
    assert!(
        files.contains_key("desired::api") && files["reconcile"].contains("rollout"),
        "the sources were read: {files:#?}"
    );
    if let Some(c) = cycle(&files) {
        panic!("module import cycle: {}", c.join(" -> "));
    }
    if let Some(c) = cycle(&top_level(&files)) {
        panic!("module import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn a_cycle_is_found() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(f, t)| (f.to_string(), BTreeSet::from([t.to_string()])))
        .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let paths = paths_after("use crate::desired::{self, Child, secrets::x};", "crate::");
    assert_eq!(
        paths,
        ["desired::self", "desired::Child", "desired::secrets::x"]
    );
    assert_eq!(
        paths_after("use super::{a, b::c};", "super::"),
        ["a", "b::c"]
    );
}

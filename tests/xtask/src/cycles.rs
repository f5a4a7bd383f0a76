//! The module graph of a crate, read from its sources, and the import cycles in it.
//!
//! The crate's module tree is followed from its root (`lib.rs`) through `mod` declarations,
//! leaving out `#[cfg(test)]` modules (tests may reach anywhere). A module depends on another when
//! its code names a path into it (`use crate::a::b`, `super::c::D`, `self::e`, or a child
//! module by its bare name). For every module, its children's dependencies are projected onto
//! the children (a reference from anything under `a` to anything under `b` is an edge `a → b`),
//! and any strongly connected set of two or more siblings is a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module's path from the crate root, e.g. `["build", "api"]`; the root is `[]`.
pub type ModPath = Vec<String>;

#[derive(Debug, Default)]
pub struct Graph {
    /// Every module, with the modules it names (absolute paths, not yet resolved to modules).
    pub refs: BTreeMap<ModPath, BTreeSet<ModPath>>,
}

pub fn read_crate(root_file: &Path) -> Result<Graph, String> {
    let mut graph = Graph::default();
    let dir = root_file.parent().unwrap().to_path_buf();
    read_module(&mut graph, Vec::new(), root_file, &dir)?;
    Ok(graph)
}

fn read_module(graph: &mut Graph, path: ModPath, file: &Path, dir: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let ast = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    read_items(graph, path, &ast.items, dir, file)
}

/// `dir` is where this module's child files live (`foo/` for `foo.rs` or `foo/mod.rs`).
fn read_items(
    graph: &mut Graph,
    path: ModPath,
    items: &[syn::Item],
    dir: &Path,
    file: &Path,
) -> Result<(), String> {
    let children: BTreeSet<String> = items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) if !is_test_only(&m.attrs) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    let mut collector = Refs {
        here: &path,
        children: &children,
        found: BTreeSet::new(),
    };
    for item in items {
        match item {
            syn::Item::Mod(_) => {}
            _ if item_is_test_only(item) => {}
            _ => collector.visit_item(item),
        }
    }
    graph
        .refs
        .entry(path.clone())
        .or_default()
        .extend(collector.found);
    for item in items {
        let syn::Item::Mod(m) = item else { continue };
        if is_test_only(&m.attrs) {
            continue;
        }
        let name = m.ident.to_string();
        let mut child = path.clone();
        child.push(name.clone());
        let child_dir = dir.join(&name);
        if let Some((_, inline)) = &m.content {
            read_items(graph, child, inline, &child_dir, file)?;
        } else {
            let candidates = [dir.join(format!("{name}.rs")), child_dir.join("mod.rs")];
            let found: Option<&PathBuf> = candidates.iter().find(|p| p.exists());
            let Some(found) = found else {
                return Err(format!(
                    "{}: mod {name}: neither {} nor {}",
                    file.display(),
                    candidates[0].display(),
                    candidates[1].display()
                ));
            };
            read_module(graph, child, found, &child_dir)?;
        }
    }
    Ok(())
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

fn item_is_test_only(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        _ => return false,
    };
    is_test_only(attrs)
}

struct Refs<'a> {
    here: &'a ModPath,
    children: &'a BTreeSet<String>,
    found: BTreeSet<ModPath>,
}

impl Refs<'_> {
    /// The absolute path a relative one starts from, or None for an outside crate or a local name.
    fn resolve(&self, segments: &[String]) -> Option<ModPath> {
        let first = segments.first()?;
        let mut base: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.here.clone(),
            "super" => {
                let mut p = self.here.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    p.pop();
                    rest = &rest[1..];
                }
                p.extend(rest.iter().cloned());
                return Some(p);
            }
            name if self.children.contains(name) => {
                let mut p = self.here.clone();
                p.push(name.to_string());
                p.extend(segments[1..].iter().cloned());
                return Some(p);
            }
            _ => return None,
        };
        base.extend(segments[1..].iter().cloned());
        Some(base)
    }

    fn add(&mut self, segments: Vec<String>) {
        if let Some(p) = self.resolve(&segments) {
            self.found.insert(p);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut s = prefix.clone();
                if n.ident != "self" {
                    s.push(n.ident.to_string());
                }
                self.add(s);
            }
            syn::UseTree::Rename(r) => {
                let mut s = prefix.clone();
                if r.ident != "self" {
                    s.push(r.ident.to_string());
                }
                self.add(s);
            }
            syn::UseTree::Glob(_) => self.add(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Refs<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.segments.len() > 1 {
            self.add(p.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
}

impl Graph {
    fn modules(&self) -> BTreeSet<&ModPath> {
        self.refs.keys().collect()
    }

    /// The module a path points into: its longest prefix that is a module.
    fn module_of(&self, path: &ModPath) -> Option<ModPath> {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.refs.contains_key(p))
    }

    /// Module → the modules it depends on (itself, ancestors and descendants left out).
    pub fn edges(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        self.refs
            .iter()
            .map(|(from, refs)| {
                let to = refs
                    .iter()
                    .filter_map(|r| self.module_of(r))
                    .filter(|t| !t.starts_with(from) && !from.starts_with(t))
                    .collect();
                (from.clone(), to)
            })
            .collect()
    }

    /// Every cycle between siblings, each as the sibling names in a strongly connected set.
    pub fn cycles(&self) -> Vec<(ModPath, Vec<String>)> {
        let edges = self.edges();
        let mut out = Vec::new();
        for parent in self.modules() {
            let children: BTreeSet<&String> = self
                .modules()
                .into_iter()
                .filter(|m| m.len() == parent.len() + 1 && m.starts_with(parent))
                .map(|m| m.last().unwrap())
                .collect();
            if children.len() < 2 {
                continue;
            }
            let child_of = |m: &ModPath| -> Option<String> {
                (m.len() > parent.len() && m.starts_with(parent)).then(|| m[parent.len()].clone())
            };
            let mut projected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (from, tos) in &edges {
                let Some(a) = child_of(from) else { continue };
                for to in tos {
                    if let Some(b) = child_of(to)
                        && a != b
                    {
                        projected.entry(a.clone()).or_default().insert(b);
                    }
                }
            }
            for scc in strongly_connected(&projected) {
                if scc.len() > 1 {
                    out.push((parent.clone(), scc));
                }
            }
        }
        out
    }
}

/// Tarjan's algorithm over a small graph.
fn strongly_connected(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            scc.sort();
            s.out.push(scc);
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    let nodes: BTreeSet<&str> = g
        .iter()
        .flat_map(|(k, vs)| std::iter::once(k.as_str()).chain(vs.iter().map(String::as_str)))
        .collect();
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

pub fn show(path: &ModPath) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir.join("lib.rs")
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-cycles-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn finds_a_cycle_between_top_level_modules_through_use_and_paths() {
        let d = tmp("top");
        let root = write(
            &d,
            &[
                ("lib.rs", "pub mod a; pub mod b; pub mod c;"),
                ("a.rs", "use crate::b::Thing; pub struct A;"),
                (
                    "b.rs",
                    "pub struct Thing; fn f() -> crate::a::A { todo!() }",
                ),
                ("c.rs", "use crate::{a::A, b::Thing};"),
            ],
        );
        let cycles = read_crate(&root).unwrap().cycles();
        assert_eq!(
            cycles,
            vec![(vec![], vec!["a".to_string(), "b".to_string()])]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn finds_nested_cycles_through_super_and_ignores_tests_and_parents() {
        let d = tmp("nested");
        let root = write(
            &d,
            &[
                ("lib.rs", "pub mod build; pub mod status;"),
                (
                    "build/mod.rs",
                    "pub mod api; pub mod restore;\n#[cfg(test)] mod tests;",
                ),
                ("build/api.rs", "use super::restore::x; pub fn y() {}"),
                ("build/restore.rs", "pub fn x() { super::api::y() }"),
                ("build/tests.rs", "use crate::status::*;"),
                (
                    "status.rs",
                    "use crate::build::api; #[cfg(test)] mod t { use crate::build::restore; }",
                ),
            ],
        );
        let cycles = read_crate(&root).unwrap().cycles();
        assert_eq!(
            cycles,
            vec![(
                vec!["build".to_string()],
                vec!["api".to_string(), "restore".to_string()]
            )]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_acyclic_crate_has_no_cycles() {
        let d = tmp("acyclic");
        let root = write(
            &d,
            &[
                ("lib.rs", "pub mod low; pub mod high;"),
                ("low.rs", "pub struct L; use std::collections::HashMap;"),
                (
                    "high.rs",
                    "use crate::low::L; mod inner { use super::super::low; }",
                ),
            ],
        );
        assert!(read_crate(&root).unwrap().cycles().is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}

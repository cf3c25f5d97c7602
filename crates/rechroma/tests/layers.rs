//! The library's modules depend on each other one way only: this test reads the sources, lists which
//! top-level module's code names which (`crate::m`), and fails on any
//! cycle, and on `train` and `infer` naming each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module → the other top-level modules its files name.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()?
                .as_os_str()
                .to_str()?
                .trim_end_matches(".rs")
                .to_string();
            (first != "lib").then_some(first)
        })
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let own = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        if own == "lib" {
            continue;
        }
        // Code only: a doc comment may link anywhere.
        let text: String = std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + 7..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if modules.contains(&name) && name != own {
                graph.get_mut(own).unwrap().insert(name);
            }
        }
    }
    graph
}

#[test]
fn library_modules_form_no_cycle() {
    let graph = graph();
    assert!(graph.len() >= 10, "modules found: {:?}", graph.keys());
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in &graph[m] {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn training_and_colorizing_do_not_import_each_other() {
    let graph = graph();
    assert!(!graph["train"].contains("infer"), "train uses {:?}", graph["train"]);
    assert!(!graph["infer"].contains("train"), "infer uses {:?}", graph["infer"]);
    // The server sits on top of colorizing, and nothing but the binary sits on it.
    assert!(!graph["serve"].contains("train"), "serve uses {:?}", graph["serve"]);
    for (m, uses) in &graph {
        assert!(m == "serve" || !uses.contains("serve"), "{m} uses serve");
    }
    // The layers below them know neither.
    for low in [
        "color", "quantize", "data", "metrics", "model", "import", "run", "predict", "evaluate",
    ] {
        for high in ["train", "infer", "serve"] {
            assert!(!graph[low].contains(high), "{low} uses {high}");
        }
    }
}

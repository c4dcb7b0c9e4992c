//! The layering of src/ (issue 16), held by a test: every top-level module
//! (a folder counts as one) has a layer in docs/layers.txt, the one table
//! that docs/architecture.md renders; imports (`use crate::…` and inline
//! `crate::x::` paths, outside comments and `#[cfg(test)]` items) go only to a
//! lower layer, or sideways where the table allows that edge; and the module
//! graph has no cycle. Failures name the file and line of every offending
//! import.

use crate::source_scan;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

const TABLE: &str = "docs/layers.txt";
const DOC: &str = "docs/architecture.md";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Layer {
    Foundation,
    Store,
    Protocol,
    Surfaces,
    Wiring,
}

const LAYERS: [(&str, Layer); 5] = [
    ("foundation", Layer::Foundation),
    ("store", Layer::Store),
    ("protocol", Layer::Protocol),
    ("surfaces", Layer::Surfaces),
    ("wiring", Layer::Wiring),
];

fn layer_name(l: Layer) -> &'static str {
    LAYERS.iter().find(|(_, x)| *x == l).unwrap().0
}

/// docs/layers.txt, parsed.
struct Table {
    layer: BTreeMap<String, Layer>,
    /// Modules per layer, in the file's order (for the rendering).
    rows: Vec<(Layer, Vec<String>)>,
    allowed: BTreeSet<(String, String)>,
    /// Lines that do not parse, or break the table's own rules.
    errors: Vec<String>,
}

fn parse_table(text: &str) -> Table {
    let mut t = Table {
        layer: BTreeMap::new(),
        rows: Vec::new(),
        allowed: BTreeSet::new(),
        errors: Vec::new(),
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = format!("{TABLE}:{}", n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(edge) = line.strip_prefix("allow ") {
            match edge
                .split_once("->")
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
            {
                Some((a, b)) if !a.is_empty() && !b.is_empty() => {
                    t.allowed.insert((a, b));
                }
                _ => t
                    .errors
                    .push(format!("{at}: expected `allow FROM -> TO`, got {line:?}")),
            }
        } else if let Some((name, modules)) = line.split_once(':') {
            let Some((_, layer)) = LAYERS.iter().find(|(n, _)| *n == name.trim()) else {
                t.errors.push(format!(
                    "{at}: unknown layer {:?} (the layers are {})",
                    name.trim(),
                    LAYERS.map(|l| l.0).join(", ")
                ));
                continue;
            };
            let list: Vec<String> = modules.split_whitespace().map(str::to_string).collect();
            for m in &list {
                if let Some(before) = t.layer.insert(m.clone(), *layer) {
                    t.errors
                        .push(format!("{at}: `{m}` is placed twice (also in {})", layer_name(before)));
                }
            }
            t.rows.push((*layer, list));
        } else {
            t.errors.push(format!(
                "{at}: expected `LAYER: modules…` or `allow FROM -> TO`, got {line:?}"
            ));
        }
    }
    t.rows.sort_by_key(|(l, _)| *l);
    for (a, b) in &t.allowed {
        match (t.layer.get(a), t.layer.get(b)) {
            (Some(la), Some(lb)) if la == lb => {}
            (Some(la), Some(lb)) => t.errors.push(format!(
                "{TABLE}: `allow {a} -> {b}` crosses layers ({} -> {}); only sideways edges need allowing, and upward ones are never allowed",
                layer_name(*la),
                layer_name(*lb)
            )),
            _ => t.errors.push(format!("{TABLE}: `allow {a} -> {b}` names a module that has no layer")),
        }
    }
    // The allowed sideways edges must leave each layer a DAG, or the table
    // itself would permit a cycle.
    let allowed_graph: Vec<(String, String)> = t.allowed.iter().cloned().collect();
    for cycle in cycles(&allowed_graph) {
        t.errors.push(format!(
            "{TABLE}: the allowed edges form a cycle: {}",
            cycle.join(" -> ")
        ));
    }
    t
}

/// The table as docs/architecture.md shows it.
fn render(t: &Table) -> String {
    let mut out =
        String::from("| layer (bottom to top) | modules | may also import, within the layer |\n|---|---|---|\n");
    for (layer, modules) in &t.rows {
        let mods: Vec<String> = modules.iter().map(|m| format!("`{m}`")).collect();
        let mut sideways: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (a, b) in &t.allowed {
            if modules.contains(a) {
                sideways.entry(a).or_default().push(b);
            }
        }
        let side: Vec<String> = modules
            .iter()
            .filter_map(|m| sideways.get(m.as_str()).map(|to| (m, to)))
            .map(|(m, to)| {
                let to: Vec<String> = to.iter().map(|b| format!("`{b}`")).collect();
                format!("`{m}` → {}", to.join(", "))
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            layer_name(*layer),
            mods.join(", "),
            side.join("; ")
        ));
    }
    out
}

/// The top-level module a file belongs to: `src/x.rs` and `src/x/…` are `x`;
/// `src/lib.rs` only declares the modules and belongs to none.
fn module_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// One import of another top-level module.
#[derive(Clone, Debug)]
struct Import {
    file: String,
    line: usize,
    from: String,
    to: String,
    /// The path as written, e.g. `crate::endpoints::apps::MAX_WEBHOOK_SECRET_OVERLAP`.
    path: String,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every `crate::…` path of a file's code that names another top-level module,
/// including each member of a `use crate::{a, b::c}` group.
fn imports(src: &source_scan::Source, modules: &BTreeSet<String>) -> Vec<Import> {
    let Some(from) = module_of(&src.path) else {
        return Vec::new();
    };
    let code = &src.code;
    let key: Vec<char> = "crate::".chars().collect();
    let mut out = Vec::new();
    let mut push = |pos: usize, written: String| {
        let first: String = written.chars().take_while(|c| is_ident(*c)).collect();
        if modules.contains(&first) && first != from {
            let path = format!("crate::{}", written.split_whitespace().collect::<Vec<_>>().join(""));
            out.push(Import {
                file: src.path.clone(),
                line: src.line_of(pos),
                from: from.clone(),
                to: first,
                path,
            });
        }
    };
    let mut i = 0;
    while i + key.len() <= code.len() {
        if code[i..i + key.len()] != key[..]
            || (i > 0 && (is_ident(code[i - 1]) || code[i - 1] == '$' || code[i - 1] == ':'))
        {
            i += 1;
            continue;
        }
        let mut j = i + key.len();
        while j < code.len() && code[j].is_whitespace() {
            j += 1;
        }
        if code.get(j) == Some(&'{') {
            // A group: split its members at top-level commas.
            let (mut depth, mut start, mut k) = (0, j + 1, j);
            while k < code.len() {
                match code[k] {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let member: String = code[start..k].iter().collect();
                        let member = member.trim();
                        let shown = match member.find('{') {
                            Some(b) => format!("{}{{…}}", &member[..b]),
                            None => member.to_string(),
                        };
                        if !member.is_empty() {
                            push(start + member_offset(&code[start..k]), shown);
                        }
                        if code[k] == '}' {
                            break;
                        }
                        start = k + 1;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
                k += 1;
            }
            i = k;
        } else {
            let written: String = code[j..].iter().take_while(|c| is_ident(**c) || **c == ':').collect();
            push(i, written.trim_end_matches(':').to_string());
            i = j;
        }
    }
    out
}

/// Char offset of the first non-space character of a group member (so that a
/// member on its own line reports that line).
fn member_offset(chars: &[char]) -> usize {
    chars.iter().position(|c| !c.is_whitespace()).unwrap_or(0)
}

/// Cycles of a directed graph: its strongly connected components of more
/// than one node, each sorted, in a stable order.
fn cycles(edges: &[(String, String)]) -> Vec<Vec<String>> {
    let mut nodes: BTreeSet<&str> = BTreeSet::new();
    let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, b) in edges {
        nodes.insert(a);
        nodes.insert(b);
        next.entry(a).or_default().insert(b);
    }
    // Tarjan, iteratively.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut low: BTreeMap<&str, usize> = BTreeMap::new();
    let mut on: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0;
    for &root in &nodes {
        if index.contains_key(root) {
            continue;
        }
        let mut work: Vec<(&str, Vec<&str>)> = Vec::new();
        index.insert(root, counter);
        low.insert(root, counter);
        counter += 1;
        stack.push(root);
        on.insert(root);
        work.push((
            root,
            next.get(root)
                .map(|s| s.iter().rev().copied().collect())
                .unwrap_or_default(),
        ));
        while let Some((v, pending)) = work.last_mut() {
            let v = *v;
            if let Some(w) = pending.pop() {
                if !index.contains_key(w) {
                    index.insert(w, counter);
                    low.insert(w, counter);
                    counter += 1;
                    stack.push(w);
                    on.insert(w);
                    work.push((
                        w,
                        next.get(w)
                            .map(|s| s.iter().rev().copied().collect())
                            .unwrap_or_default(),
                    ));
                } else if on.contains(w) {
                    let lw = index[w];
                    let lv = low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                }
            } else {
                work.pop();
                if let Some((parent, _)) = work.last() {
                    let lv = low[v];
                    let lp = low.get_mut(parent).unwrap();
                    *lp = (*lp).min(lv);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    loop {
                        let w = stack.pop().unwrap();
                        on.remove(w);
                        comp.push(w.to_string());
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        comp.sort();
                        out.push(comp);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The shortest path from `from` to `to` over `edges`, both ends included.
fn shortest_path(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([from.to_string()]);
    let mut seen = BTreeSet::from([from.to_string()]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            let mut path = vec![v.clone()];
            let mut cur = v;
            while let Some(p) = prev.get(&cur) {
                path.push(p.clone());
                cur = p.clone();
            }
            path.reverse();
            return Some(path);
        }
        for w in edges.get(&v).into_iter().flatten() {
            if seen.insert(w.clone()) {
                prev.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    None
}

/// What the check found: the report, and whether anything is wrong.
struct Verdict {
    report: String,
    violations: usize,
    cycles: usize,
}

fn check(table: &Table, imports: &[Import]) -> Verdict {
    let mut upward: BTreeMap<(String, String), Vec<&Import>> = BTreeMap::new();
    let mut sideways: BTreeMap<(String, String), Vec<&Import>> = BTreeMap::new();
    let mut unplaced: BTreeSet<String> = BTreeSet::new();
    for imp in imports {
        let (Some(lf), Some(lt)) = (table.layer.get(&imp.from), table.layer.get(&imp.to)) else {
            for m in [&imp.from, &imp.to] {
                if !table.layer.contains_key(m) {
                    unplaced.insert(m.clone());
                }
            }
            continue;
        };
        let edge = (imp.from.clone(), imp.to.clone());
        if lf < lt {
            upward.entry(edge).or_default().push(imp);
        } else if lf == lt && !table.allowed.contains(&edge) {
            sideways.entry(edge).or_default().push(imp);
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut first_at: BTreeMap<(String, String), &Import> = BTreeMap::new();
    for imp in imports {
        graph.entry(imp.from.clone()).or_default().insert(imp.to.clone());
        first_at.entry((imp.from.clone(), imp.to.clone())).or_insert(imp);
    }
    let edge_list: Vec<(String, String)> = graph
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| (a.clone(), b.clone())))
        .collect();
    let sccs = cycles(&edge_list);

    let lay = |m: &str| table.layer.get(m).map_or("no layer", |l| layer_name(*l));
    let count = |g: &BTreeMap<(String, String), Vec<&Import>>| g.values().map(Vec::len).sum::<usize>();
    let violations = count(&upward) + count(&sideways);
    let mut r = String::new();
    r.push_str(&format!(
        "Layering of src/ against {TABLE}: {violations} import{} break{} it ({} upward, {} sideways) across {} module edge{}; {} cycle{}.\n",
        if violations == 1 { "" } else { "s" },
        if violations == 1 { "s" } else { "" },
        count(&upward),
        count(&sideways),
        upward.len() + sideways.len(),
        if upward.len() + sideways.len() == 1 { "" } else { "s" },
        sccs.len(),
        if sccs.len() == 1 { "" } else { "s" },
    ));
    if !unplaced.is_empty() {
        r.push_str(&format!(
            "\nModules with no layer in {TABLE} (their imports are not checked): {}\n",
            unplaced.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let section = |r: &mut String, title: &str, g: &BTreeMap<(String, String), Vec<&Import>>| {
        if g.is_empty() {
            return;
        }
        r.push_str(&format!("\n{title}\n"));
        for ((a, b), list) in g {
            r.push_str(&format!(
                "  {a} ({}) -> {b} ({}): {} import{}\n",
                lay(a),
                lay(b),
                list.len(),
                if list.len() == 1 { "" } else { "s" }
            ));
            for imp in list {
                r.push_str(&format!("    {}:{}  {}\n", imp.file, imp.line, imp.path));
            }
        }
    };
    section(
        &mut r,
        "Upward imports (a lower layer reaching up): move the code down to the layer that needs it, or let the wiring pass it in as data or a hook.",
        &upward,
    );
    section(
        &mut r,
        &format!("Sideways imports that {TABLE} does not allow: move the shared part down, or add `allow FROM -> TO` if the edge is meant."),
        &sideways,
    );
    if !sccs.is_empty() {
        r.push_str("\nCycles (modules that reach one another through their imports):\n");
        for (n, comp) in sccs.iter().enumerate() {
            r.push_str(&format!("  {}. {} modules: {}\n", n + 1, comp.len(), comp.join(", ")));
            // Each cycle passes through at least one offending edge (the
            // allowed graph is acyclic); show the shortest cycle through each
            // such edge inside this component, so each is a thing to cut.
            let inside = |m: &String| comp.contains(m);
            let mut shown = BTreeSet::new();
            for (a, b) in upward
                .keys()
                .chain(sideways.keys())
                .filter(|(a, b)| inside(a) && inside(b))
            {
                if let Some(back) = shortest_path(&graph, b, a) {
                    let mut cyc = vec![a.clone()];
                    cyc.extend(back);
                    let at: Vec<String> = cyc
                        .windows(2)
                        .map(|w| {
                            let imp = first_at[&(w[0].clone(), w[1].clone())];
                            format!("{} -> {} ({}:{})", w[0], w[1], imp.file, imp.line)
                        })
                        .collect();
                    if shown.insert(cyc.clone()) {
                        r.push_str(&format!("     cut {a} -> {b}: {}\n", at.join(", ")));
                    }
                }
            }
        }
    }
    Verdict {
        report: r,
        violations,
        cycles: sccs.len(),
    }
}

fn repository() -> (Table, Vec<Import>, Vec<String>) {
    let root = source_scan::root();
    let table = parse_table(&std::fs::read_to_string(root.join(TABLE)).expect("read docs/layers.txt"));
    let sources = source_scan::crate_sources();
    let modules: BTreeSet<String> = sources.iter().filter_map(|s| module_of(&s.path)).collect();
    let imports = sources
        .iter()
        .filter(|s| !s.test_only)
        .flat_map(|s| imports(s, &modules))
        .collect();
    (table, imports, modules.into_iter().collect())
}

#[test]
fn imports_go_only_downwards_and_form_no_cycle() {
    let (table, imports, _) = repository();
    assert!(
        table.errors.is_empty(),
        "{TABLE} is malformed:\n  {}",
        table.errors.join("\n  ")
    );
    let verdict = check(&table, &imports);
    assert!(verdict.violations == 0 && verdict.cycles == 0, "\n{}", verdict.report);
}

#[test]
fn every_module_has_one_layer_and_the_architecture_doc_renders_the_table() {
    let (table, _, modules) = repository();
    let mut problems = table.errors.clone();
    for m in &modules {
        if !table.layer.contains_key(m) {
            problems.push(format!(
                "src/{m}: a top-level module with no layer; place it in {TABLE}"
            ));
        }
    }
    for m in table.layer.keys() {
        if !modules.contains(m) {
            problems.push(format!(
                "{TABLE}: `{m}` is not a module of src/ (moved or removed?); drop it"
            ));
        }
    }
    let doc = std::fs::read_to_string(source_scan::root().join(DOC)).expect("read docs/architecture.md");
    let rendered = render(&table);
    if !doc.contains(&rendered) {
        problems.push(format!(
            "{DOC} does not show the layer table of {TABLE}; put this in it:\n\n{rendered}"
        ));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The checker itself fails on what it is for (no test that cannot fail).
#[test]
fn the_checker_reports_upward_and_sideways_imports_and_cycles() {
    let table = parse_table(
        "foundation: http error\nprotocol: grants bearer jwt\nsurfaces: endpoints\nallow error -> http\nallow bearer -> jwt\n",
    );
    assert!(table.errors.is_empty(), "{:?}", table.errors);
    let modules: BTreeSet<String> = ["http", "error", "grants", "bearer", "jwt", "endpoints"]
        .map(String::from)
        .into();
    let file = |path: &str, text: &str| imports(&source_scan::parse(path, text), &modules);
    let mut all = Vec::new();
    all.extend(file("src/error.rs", "use crate::http::Response;\n"));
    all.extend(file(
        "src/http.rs",
        "// crate::endpoints in a comment\nfn f() { let s = \"crate::grants\"; }\n",
    ));
    all.extend(file(
        "src/bearer/mod.rs",
        "use crate::{\n    jwt,\n    grants::{a, b},\n};\n",
    ));
    all.extend(file("src/grants/mod.rs", "fn f() -> crate::bearer::X { loop {} }\n"));
    all.extend(file(
        "src/jwt.rs",
        "use crate::endpoints::apps::MAX;\n#[cfg(test)]\nmod tests { use crate::endpoints::x; }\n",
    ));
    let v = check(&table, &all);
    assert_eq!((v.violations, v.cycles), (3, 1), "{}", v.report);
    for expected in [
        "jwt (protocol) -> endpoints (surfaces): 1 import\n    src/jwt.rs:1  crate::endpoints::apps::MAX",
        "bearer (protocol) -> grants (protocol): 1 import\n    src/bearer/mod.rs:3  crate::grants::{…}",
        "grants (protocol) -> bearer (protocol): 1 import\n    src/grants/mod.rs:1  crate::bearer::X",
        "1. 2 modules: bearer, grants",
        "cut bearer -> grants: bearer -> grants (src/bearer/mod.rs:3), grants -> bearer (src/grants/mod.rs:1)",
    ] {
        assert!(v.report.contains(expected), "missing {expected:?} in:\n{}", v.report);
    }
    // Allowed edges that cross layers or loop are refused by the table itself.
    let bad = parse_table("foundation: a b\nprotocol: c\nallow a -> c\nallow a -> b\nallow b -> a\n");
    let errors = bad.errors.join("\n");
    assert!(errors.contains("`allow a -> c` crosses layers"), "{errors}");
    assert!(errors.contains("the allowed edges form a cycle"), "{errors}");
}

//! Reads the crate's own Rust sources for the checks that hold the docs and
//! the layering to the code (tests/architecture.rs, tests/configuration_docs.rs):
//! a view of each file with comments, string contents and `#[cfg(test)]` items
//! blanked out (lines keep their numbers), and the string literals of the code
//! that remains. A small hand lexer, because the checks need only that much.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A string literal: its line, the position of its first character in
/// `Source::code` (the opening quote is just before it), its text as written.
pub struct Lit {
    pub line: usize,
    pub pos: usize,
    pub text: String,
}

/// One source file, as the checks see it.
pub struct Source {
    /// Path relative to the crate root, with `/` separators (`src/config/mod.rs`).
    pub path: String,
    /// The text with comments, the contents of string and char literals, and
    /// `#[cfg(test)]` items replaced by spaces; newlines are kept.
    pub code: Vec<char>,
    /// String literals outside comments and test items.
    pub strings: Vec<Lit>,
    /// Whether the file is test code as a whole (a `tests.rs` module).
    pub test_only: bool,
}

impl Source {
    pub fn line_of(&self, pos: usize) -> usize {
        1 + self.code[..pos].iter().filter(|c| **c == '\n').count()
    }

    pub fn code_text(&self) -> String {
        self.code.iter().collect()
    }
}

/// Every `.rs` file under `dir`, sorted, so the reports are stable.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every Rust file under `src/`, read.
pub fn crate_sources() -> Vec<Source> {
    let root = root();
    rust_files(&root.join("src"))
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {rel}: {e}"));
            parse(&rel, &text)
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Lex `text`; see [`Source`].
pub fn parse(path: &str, text: &str) -> Source {
    let s: Vec<char> = text.chars().collect();
    let mut code = s.clone();
    // (start position, line, contents)
    let mut strings: Vec<(usize, usize, String)> = Vec::new();
    let blank = |code: &mut Vec<char>, from: usize, to: usize| {
        for c in code.iter_mut().take(to.min(s.len())).skip(from) {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut line = 1;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && next == Some('/') {
            let end = s[i..].iter().position(|c| *c == '\n').map_or(s.len(), |n| i + n);
            blank(&mut code, i, end);
            i = end;
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (1, i + 2);
            while j < s.len() && depth > 0 {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    if s[j] == '\n' {
                        line += 1;
                    }
                    j += 1;
                }
            }
            blank(&mut code, i, j);
            i = j;
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !is_ident(s[i - 1]) || s[i - 1] == 'b')
        {
            // Raw string r"…" / r#"…"#; a plain identifier starting with r is left alone.
            let mut j = i + 1;
            let mut hashes = 0;
            while s.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if s.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            let start = j + 1;
            let mut k = start;
            let end = loop {
                if k >= s.len() {
                    break s.len();
                }
                if s[k] == '"' && s[k + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes {
                    break k;
                }
                k += 1;
            };
            strings.push((start, line, s[start..end].iter().collect()));
            line += s[start..end].iter().filter(|c| **c == '\n').count();
            blank(&mut code, start, end);
            i = (end + 1 + hashes).min(s.len());
        } else if c == '"' {
            let start = i + 1;
            let mut k = start;
            while k < s.len() && s[k] != '"' {
                k += if s[k] == '\\' { 2 } else { 1 };
            }
            let end = k.min(s.len());
            strings.push((start, line, s[start..end].iter().collect()));
            line += s[start..end].iter().filter(|c| **c == '\n').count();
            blank(&mut code, start, end);
            i = end + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}', '"'), else a lifetime or label.
            if next == Some('\\') {
                let from = (i + 3).min(s.len());
                let end = s[from..].iter().position(|c| *c == '\'').map_or(s.len(), |n| from + n);
                blank(&mut code, i + 1, end);
                i = end + 1;
            } else if s.get(i + 2) == Some(&'\'') {
                blank(&mut code, i + 1, i + 2);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    // `#[cfg(test)]` items: the attribute, any further attributes, and the item
    // up to its `;` or its closing brace.
    let pattern: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut removed: Vec<(usize, usize)> = Vec::new();
    let mut p = 0;
    while p + pattern.len() <= code.len() {
        if code[p..p + pattern.len()] != pattern[..] {
            p += 1;
            continue;
        }
        let mut j = p + pattern.len();
        let (mut depth, mut end) = (0i32, code.len());
        while j < code.len() {
            match code[j] {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                '{' if depth == 0 => {
                    let mut braces = 0;
                    while j < code.len() {
                        match code[j] {
                            '{' => braces += 1,
                            '}' => {
                                braces -= 1;
                                if braces == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    end = (j + 1).min(code.len());
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        for c in code.iter_mut().take(end).skip(p) {
            if *c != '\n' {
                *c = ' ';
            }
        }
        removed.push((p, end));
        p = end;
    }
    let strings = strings
        .into_iter()
        .filter(|(pos, _, _)| !removed.iter().any(|(a, b)| (*a..*b).contains(pos)))
        .map(|(pos, line, text)| Lit { line, pos, text })
        .collect();
    let test_only = path.ends_with("/tests.rs") || path.contains("/tests/");
    Source {
        path: path.to_string(),
        code,
        strings,
        test_only,
    }
}

#[cfg(test)]
mod lexer_tests {
    use super::parse;

    #[test]
    fn comments_strings_and_test_items_are_blanked() {
        let src = "use a; // \"NOT_A\"\n/* crate::x \"B\" */ let c = '\"'; let q = '\\''; let d = \"KEY_ONE\";\nlet e = r#\"RAW \"q\"\"#;\n#[cfg(test)]\nmod tests { const X: &str = \"TEST_KEY\"; }\nfn f<'a>() { \"LAST\" }\n";
        let s = parse("src/x.rs", src);
        let texts: Vec<(usize, &str)> = s.strings.iter().map(|l| (l.line, l.text.as_str())).collect();
        assert_eq!(texts, vec![(2, "KEY_ONE"), (3, "RAW \"q\""), (6, "LAST")]);
        let code = s.code_text();
        assert!(!code.contains("crate::x") && !code.contains("TEST_KEY") && !code.contains("mod tests"));
        assert_eq!(code.lines().count(), src.lines().count());
    }
}

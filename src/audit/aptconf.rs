//! A lenient reader for apt.conf(5) syntax, just enough to answer a few keys
//! (`APT::Periodic::Unattended-Upgrade`, `Unattended-Upgrade::Package-Blacklist`).
//! Never fails: what it cannot parse it skips.

/// One assignment, in file order. Keys are lowercased (apt keys are case-insensitive) and
/// written with `::`; list items (`Key { "a"; "b"; };` or `Key:: "a";`) repeat their key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Set(String, String),
    /// `#clear Key`.
    Clear(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Semi,
    Clear(String),
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if text[i..].starts_with("//") => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if text[i..].starts_with("/*") => {
                chars.next();
                let mut prev = ' ';
                for (_, c) in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '#' => {
                let mut line = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                    line.push(c);
                }
                if let Some(rest) = line.strip_prefix("clear") {
                    for key in rest.split([' ', '\t', ';']).filter(|k| !k.is_empty()) {
                        out.push(Tok::Clear(key.to_string()));
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    s.push(c);
                }
                out.push(Tok::Str(s));
            }
            '{' => out.push(Tok::Open),
            '}' => out.push(Tok::Close),
            ';' => out.push(Tok::Semi),
            c => {
                let mut w = String::from(c);
                while let Some(&(j, n)) = chars.peek() {
                    if n.is_whitespace()
                        || matches!(n, '{' | '}' | ';' | '"')
                        || text[j..].starts_with("//")
                    {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    out
}

fn key(scope: &[String], word: &str) -> String {
    let word = word.trim_end_matches("::").to_ascii_lowercase();
    let mut parts: Vec<&str> = scope.iter().map(String::as_str).collect();
    if !word.is_empty() {
        parts.push(&word);
    }
    parts.join("::")
}

/// Parses one file's text.
pub(crate) fn parse(text: &str) -> Vec<Item> {
    let toks = tokenize(text);
    let mut items = Vec::new();
    let mut scope: Vec<String> = Vec::new();
    // Scope length before each open `{`, so that `}` restores exactly the outer scope.
    let mut outer: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) => {
                let k = key(&scope, w);
                match toks.get(i + 1) {
                    Some(Tok::Str(v)) => {
                        items.push(Item::Set(k, v.clone()));
                        i += 2;
                    }
                    Some(Tok::Open) => {
                        outer.push(scope.len());
                        scope = k.split("::").map(str::to_string).collect();
                        i += 2;
                    }
                    _ => i += 1,
                }
            }
            Tok::Str(v) => {
                if !scope.is_empty() {
                    items.push(Item::Set(scope.join("::"), v.clone()));
                }
                i += 1;
            }
            Tok::Close => {
                // A scope opened as `A::B {` closes whole, back to where it was opened.
                scope.truncate(outer.pop().unwrap_or(0));
                i += 1;
            }
            Tok::Clear(k) => {
                items.push(Item::Clear(key(&scope, k)));
                i += 1;
            }
            Tok::Open | Tok::Semi => i += 1,
        }
    }
    items
}

/// The merged configuration of several files, in reading order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conf {
    items: Vec<Item>,
}

impl Conf {
    pub(crate) fn add(&mut self, text: &str) {
        self.items.extend(parse(text));
    }

    fn live(&self, key: &str) -> impl Iterator<Item = &str> {
        let key = key.to_ascii_lowercase();
        let start = self
            .items
            .iter()
            .rposition(|it| match it {
                Item::Clear(c) => key == *c || key.starts_with(&format!("{c}::")),
                Item::Set(..) => false,
            })
            .map_or(0, |p| p + 1);
        self.items[start..].iter().filter_map(move |it| match it {
            Item::Set(k, v) if *k == key => Some(v.as_str()),
            _ => None,
        })
    }

    /// The last value set for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.live(key).last()
    }

    /// Every list item of `key`.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.live(key)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }
}

//! Strict YAML loading with exact positions for every value.
//!
//! rotor's inputs decide who may move a production credential, so they are parsed strictly:
//! files over 1 MiB, invalid UTF-8, control characters, tags, anchors, aliases (used or not),
//! duplicate keys, several documents and deep nesting are refused before any value is read.
//!
//! Two passes, for two reasons. serde_norway loads the values (it keeps YAML's core-schema types:
//! `12`, `~` and `true` are not strings), but it accepts tags and anchors silently and places an
//! error on the key rather than the value. A yaml-rust2 event pass, which sees anchors, tags and
//! the exact marker of every node, refuses what rotor does not accept and indexes the position of
//! each value by its path (`refs[3].ref`), so that every later check can point at the very
//! character the user must change.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use serde_norway::Value;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

use crate::diagnostic::{Diagnostic, Diagnostics, Pos, quote};

/// Largest input accepted, in bytes (1 MiB; exactly 1 MiB is fine).
pub const MAX_FILE_BYTES: u64 = 1_048_576;

/// Deepest nesting of lists and mappings accepted; rotor's formats need five levels.
const MAX_DEPTH: usize = 16;

/// Reads a file, refusing it when it is larger than [`MAX_FILE_BYTES`] without reading further.
pub fn read_limited(path: &Path, display: &str) -> Result<Vec<u8>, Diagnostic> {
    let open_error = |err: std::io::Error| {
        Diagnostic::new(
            "unreadable_file",
            display,
            Pos::START,
            format!("cannot read the file: {err}"),
        )
        .help("check that the path exists and is a readable file")
    };
    let file = File::open(path).map_err(open_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(open_error)?;
    check_size(display, bytes.len())?;
    Ok(bytes)
}

fn check_size(display: &str, len: usize) -> Result<(), Diagnostic> {
    if len as u64 > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            "file_too_large",
            display,
            Pos::START,
            format!("the file is larger than {MAX_FILE_BYTES} bytes (1 MiB)"),
        )
        .help("split the batch into several requests of at most 2000 refs each"));
    }
    Ok(())
}

/// Where a value sits, and where the key that introduces it sits.
#[derive(Debug, Clone, Copy)]
struct Span {
    key: Option<Pos>,
    value: Pos,
}

/// A parsed YAML document with the position of every value.
#[derive(Debug)]
pub struct Document {
    file: String,
    root: Value,
    spans: HashMap<String, Span>,
}

impl Document {
    /// Parses `bytes` as a single strict YAML document; `file` names it in diagnostics.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, Diagnostic> {
        check_size(file, bytes.len())?;
        let text = decode(file, bytes)?;
        let spans = index(file, text)?;
        let root: Value = serde_norway::from_str(text).map_err(|err| {
            let pos = err
                .location()
                .map_or(Pos::START, |l| Pos::new(l.line(), l.column()))
                .min(end_of(text));
            syntax_error(file, pos, &err.to_string(), text)
        })?;
        Ok(Self {
            file: file.to_owned(),
            root,
            spans,
        })
    }

    /// The file name used in diagnostics.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The top-level value.
    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            value: &self.root,
            path: String::new(),
        }
    }

    fn span(&self, path: &str) -> Span {
        self.spans.get(path).copied().unwrap_or(Span {
            key: None,
            value: Pos::START,
        })
    }
}

fn decode<'b>(file: &str, bytes: &'b [u8]) -> Result<&'b str, Diagnostic> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let pos = pos_of_byte(&bytes[..err.valid_up_to()]);
        Diagnostic::new("invalid_utf8", file, pos, "the file is not valid UTF-8")
            .help("save the file as UTF-8")
    })?;
    // U+2028 and U+2029 break lines for YAML 1.1 (and serde_norway's libyaml) but not for
    // YAML 1.2 or most editors: positions, and what a reviewer sees, would disagree.
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{2028}' | '\u{2029}')
    }) {
        return Err(Diagnostic::new(
            "control_character",
            file,
            pos_of_byte(&bytes[..at]),
            format!("control character {} in the file", c.escape_unicode()),
        )
        .help("remove it; rotor's files are plain text"));
    }
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// The position just after `prefix`, which must be valid UTF-8 up to its end.
///
/// Lines break as YAML (and the parser's markers) break them: at LF, CRLF and a lone CR.
fn pos_of_byte(prefix: &[u8]) -> Pos {
    let text = String::from_utf8_lossy(prefix);
    let mut line = 1;
    let mut column = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let breaks = c == '\n' || (c == '\r' && chars.peek() != Some(&'\n'));
        if breaks {
            line += 1;
            column = 1;
        } else if c != '\r' {
            column += 1;
        }
    }
    Pos::new(line, column)
}

/// The position just after the last character: where an error "at the end of input" belongs,
/// since the parser may place it on a line the file does not have.
fn end_of(text: &str) -> Pos {
    pos_of_byte(text.as_bytes())
}

fn marker_pos(m: &Marker) -> Pos {
    Pos::new(m.line().max(1), m.col() + 1)
}

enum Frame {
    Map {
        path: String,
        key: Option<(String, Pos)>,
        seen: HashMap<String, Pos>,
        first_key_pending: bool,
    },
    Seq {
        path: String,
        next: usize,
    },
}

/// The anchor (`&`) or tag (`!`) token written just before the node at `marker`, with its
/// position: the parser places a node's marker after its properties, but the user must be
/// shown the property itself. Looks back over at most two tokens (`&a !t value`).
fn token_before(text: &str, marker: &Marker, sigil: char) -> Option<(Pos, String)> {
    let chars: Vec<char> = text.chars().take(marker.index()).collect();
    let mut end = chars.len();
    for _ in 0..2 {
        while end > 0 && chars[end - 1].is_whitespace() {
            end -= 1;
        }
        let mut start = end;
        while start > 0
            && !chars[start - 1].is_whitespace()
            && !matches!(chars[start - 1], '{' | '[' | ',')
        {
            start -= 1;
        }
        if start == end {
            return None;
        }
        if chars[start] == sigil {
            let written: String = chars[start..end].iter().collect();
            let before: String = chars[..start].iter().collect();
            return Some((pos_of_byte(before.as_bytes()), written));
        }
        end = start;
    }
    None
}

/// A YAML syntax error in plain words. The parser's own phrases ("did not find expected key")
/// describe its state, not the file; each known one is said as what to fix, and an unknown one
/// is kept as the parser put it.
fn syntax_error(file: &str, pos: Pos, parser: &str, text: &str) -> Diagnostic {
    let has = |s: &str| parser.contains(s);
    let list_item = text
        .lines()
        .nth(pos.line.saturating_sub(1))
        .is_some_and(|l| l.trim_start().starts_with("- "));
    let (message, help) = if has("quoted scalar") && has("end of stream") {
        (
            "a quoted string is never closed: the file ends inside it",
            "close the quote, or check for a quote inside the text (write '' inside single quotes, \\\" inside double quotes)",
        )
    } else if has("did not find expected '-' indicator")
        || (has("did not find expected key") && list_item)
    {
        (
            "this line does not line up with the list items above it",
            "indent each `- ` item of a list by the same number of spaces",
        )
    } else if has("did not find expected key") {
        (
            "this line does not line up with the keys above it",
            "indent each key of a mapping by the same number of spaces (spaces, not tabs)",
        )
    } else if has("mapping values are not allowed") {
        (
            "a `key: value` appears where a plain value was expected",
            "quote a value that contains `: `, or put the key on a line of its own",
        )
    } else if has("cannot start any token") {
        (
            "this character cannot start a value here",
            "indent with spaces, not tabs; quote a value that starts with `@`, `` ` `` or `%`",
        )
    } else if has("could not find expected ':'") {
        (
            "a key is missing its `:`",
            "write `key: value`, or quote a value that spans lines",
        )
    } else if has("unknown escape") {
        (
            "an unknown escape in a double-quoted string",
            "write \\\\ for a backslash, or use single quotes",
        )
    } else if has("end of stream") || has("premature end") {
        (
            "the file ends in the middle of a value",
            "complete the last value, or check its quotes and brackets",
        )
    } else if has("tabs disallowed") || has("found a tab") {
        (
            "a tab is used for indentation here",
            "indent with spaces; YAML does not accept tabs there",
        )
    } else if has("did not find expected node content") {
        (
            "a value is missing here",
            "close an open `[` or `{`, or give the `- ` or `key:` before it a value",
        )
    } else if has("flow") {
        (
            "a `[...]` or `{...}` is not closed or not separated by commas",
            "check the brackets and commas of the inline list or mapping",
        )
    } else {
        return Diagnostic::new("yaml_syntax", file, pos, format!("invalid YAML: {parser}"))
            .help("check indentation and quoting here");
    };
    Diagnostic::new("yaml_syntax", file, pos, format!("invalid YAML: {message}")).help(help)
}

/// The event pass: refuses what rotor does not accept and records where each value is.
fn index(file: &str, text: &str) -> Result<HashMap<String, Span>, Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    let mut spans: HashMap<String, Span> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0usize;
    let refuse = |code, pos, message: String, help: &str| {
        Err(Diagnostic::new(code, file, pos, message).help(help))
    };
    loop {
        let (event, marker) = parser.next_token().map_err(|err| {
            syntax_error(
                file,
                marker_pos(err.marker()).min(end_of(text)),
                err.info(),
                text,
            )
        })?;
        let pos = marker_pos(&marker);
        let (anchor, tag) = match &event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return refuse(
                        "multiple_documents",
                        pos,
                        "the file holds more than one YAML document".into(),
                        "keep one document per file and remove the `---` separator",
                    );
                }
                continue;
            }
            Event::Alias(_) => {
                return refuse(
                    "yaml_alias",
                    pos,
                    "YAML anchors and aliases (`&name`, `*name`) are not accepted".into(),
                    "write the value out in full",
                );
            }
            Event::Scalar(_, _, anchor, tag)
            | Event::SequenceStart(anchor, tag)
            | Event::MappingStart(anchor, tag) => (*anchor, tag.clone()),
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                continue;
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => continue,
        };
        if anchor != 0 {
            let (pos, _) = token_before(text, &marker, '&').unwrap_or((pos, String::new()));
            return refuse(
                "yaml_anchor",
                pos,
                "YAML anchors and aliases (`&name`, `*name`) are not accepted".into(),
                "remove the anchor; write every value out in full",
            );
        }
        if let Some(tag) = tag {
            let (pos, written) = token_before(text, &marker, '!')
                .unwrap_or_else(|| (pos, format!("{}{}", tag.handle, tag.suffix)));
            return refuse(
                "yaml_tag",
                pos,
                format!("explicit YAML tag {} is not accepted", quote(&written)),
                "remove the tag; quote the value if it must be a string",
            );
        }
        let starts = match event {
            Event::SequenceStart(..) => Some(false),
            Event::MappingStart(..) => Some(true),
            _ => None,
        };
        // Where does this node go: is it a key, a mapping value, a list item or the root?
        let (path, key_pos) = match stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                (p, None)
            }
            Some(Frame::Map {
                path,
                key,
                seen,
                first_key_pending,
            }) => match key.take() {
                None => {
                    let Event::Scalar(name, ..) = &event else {
                        return refuse(
                            "complex_key",
                            pos,
                            "a mapping key must be a plain string".into(),
                            "write keys as plain words, e.g. `reason:`",
                        );
                    };
                    if let Some(first) = seen.get(name) {
                        return refuse(
                            "duplicate_key",
                            pos,
                            format!(
                                "duplicate key {} (first at line {})",
                                quote(name),
                                first.line
                            ),
                            "keep one entry per key and remove the other",
                        );
                    }
                    seen.insert(name.clone(), pos);
                    if *first_key_pending {
                        // A block mapping's start marker is unreliable; its first key is exact.
                        *first_key_pending = false;
                        if let Some(span) = spans.get_mut(path.as_str()) {
                            span.value = pos;
                        }
                    }
                    *key = Some((name.clone(), pos));
                    continue;
                }
                Some((name, kpos)) => {
                    let p = if path.is_empty() {
                        name
                    } else {
                        format!("{path}.{name}")
                    };
                    (p, Some(kpos))
                }
            },
        };
        spans.insert(
            path.clone(),
            Span {
                key: key_pos,
                value: pos,
            },
        );
        if let Some(is_map) = starts {
            if stack.len() >= MAX_DEPTH {
                return refuse(
                    "too_deep",
                    pos,
                    format!("lists and mappings are nested deeper than {MAX_DEPTH} levels"),
                    "flatten the structure; rotor's formats need only a few levels",
                );
            }
            stack.push(if is_map {
                Frame::Map {
                    path,
                    key: None,
                    seen: HashMap::new(),
                    first_key_pending: true,
                }
            } else {
                Frame::Seq { path, next: 0 }
            });
        }
    }
    Ok(spans)
}

/// A value in a [`Document`], with its path and position, for typed conversion.
#[derive(Debug, Clone)]
pub struct Node<'d> {
    doc: &'d Document,
    value: &'d Value,
    path: String,
}

impl<'d> Node<'d> {
    /// The raw value.
    pub const fn value(&self) -> &'d Value {
        self.value
    }

    /// The path of the value, e.g. `refs[3].ref`; empty for the root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path for messages: `the top level` for the root.
    pub fn describe(&self) -> String {
        if self.path.is_empty() {
            "the top level".to_owned()
        } else {
            format!("`{}`", self.path)
        }
    }

    /// Where the value starts; for a value left empty (`to:`), where its key is, since the
    /// parser places an empty value at whatever token comes next.
    pub fn pos(&self) -> Pos {
        let span = self.doc.span(&self.path);
        match span.key {
            Some(key) if self.value.is_null() && span.value.line != key.line => key,
            _ => span.value,
        }
    }

    /// Where the key that introduces the value starts (the value itself for list items).
    pub fn key_pos(&self) -> Pos {
        let span = self.doc.span(&self.path);
        span.key.unwrap_or(span.value)
    }

    /// A diagnostic pointing at this value.
    pub fn error(&self, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, self.doc.file(), self.pos(), message)
    }

    /// A diagnostic pointing at the key that introduces this value.
    pub fn key_error(&self, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, self.doc.file(), self.key_pos(), message)
    }

    /// Whether the value is YAML null (`~`, `null` or nothing).
    pub fn is_null(&self) -> bool {
        self.value.is_null()
    }

    fn child(&self, segment: &str, value: &'d Value) -> Self {
        let path = if self.path.is_empty() {
            segment.to_owned()
        } else if segment.starts_with('[') {
            format!("{}{segment}", self.path)
        } else {
            format!("{}.{segment}", self.path)
        };
        Node {
            doc: self.doc,
            value,
            path,
        }
    }

    fn wrong_type(&self, expected: &str, help: &str) -> Diagnostic {
        self.error(
            "wrong_type",
            format!(
                "{} must be {expected}, found {}",
                self.describe(),
                kind(self.value)
            ),
        )
        .help(help)
    }

    /// The value as a string; anything else (a number, a boolean, null) is a type error.
    pub fn string(&self, diags: &mut Diagnostics) -> Option<&'d str> {
        match self.value {
            Value::String(s) => Some(s),
            _ => {
                diags.push(self.wrong_type(
                    "a string",
                    "write text; quote it if it looks like a number, a boolean or null",
                ));
                None
            }
        }
    }

    /// The value as a string with at least one non-blank character.
    pub fn non_empty_string(&self, diags: &mut Diagnostics) -> Option<&'d str> {
        let s = self.string(diags)?;
        if s.trim().is_empty() {
            diags.push(
                self.error(
                    "empty_value",
                    format!("{} must not be empty", self.describe()),
                )
                .help("write a non-blank value, or remove the key if it is optional"),
            );
            return None;
        }
        Some(s)
    }

    /// The value as a non-negative integer.
    pub fn unsigned(&self, diags: &mut Diagnostics) -> Option<u64> {
        match self.value {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            _ => {
                diags.push(self.wrong_type(
                    "a non-negative integer",
                    "write a plain number such as 1, without quotes",
                ));
                None
            }
        }
    }

    /// The value as a boolean (`true` or `false`).
    pub fn boolean(&self, diags: &mut Diagnostics) -> Option<bool> {
        if let Value::Bool(b) = self.value {
            Some(*b)
        } else {
            diags.push(self.wrong_type("`true` or `false`", "write true or false, without quotes"));
            None
        }
    }

    /// The items of a list.
    pub fn sequence(&self, diags: &mut Diagnostics) -> Option<Vec<Self>> {
        if let Value::Sequence(items) = self.value {
            Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.child(&format!("[{i}]"), v))
                    .collect(),
            )
        } else {
            diags.push(self.wrong_type("a list", "write one `- item` per line, or `[item, item]`"));
            None
        }
    }

    /// A list of distinct, non-empty strings, with at least one item.
    pub fn string_set(&self, diags: &mut Diagnostics) -> Option<Vec<(Self, &'d str)>> {
        let items = self.sequence(diags)?;
        if items.is_empty() {
            diags.push(
                self.error(
                    "empty_list",
                    format!("{} must not be an empty list", self.describe()),
                )
                .help("list at least one item, or remove the key"),
            );
            return None;
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(items.len());
        let before = diags.len();
        for item in items {
            if let Some(s) = item.non_empty_string(diags) {
                if seen.insert(s) {
                    out.push((item, s));
                } else {
                    diags.push(
                        item.error("duplicate_item", format!("{} is listed twice", quote(s)))
                            .help("list each item once"),
                    );
                }
            }
        }
        (diags.len() == before).then_some(out)
    }

    /// The value as a mapping whose keys are all in `allowed`; reports every other key.
    pub fn mapping(&self, diags: &mut Diagnostics, allowed: &[&str]) -> Option<Mapping<'d>> {
        self.mapping_in(diags, allowed, &[])
    }

    /// As [`Node::mapping`], where `elsewhere` names keys that belong at another place
    /// (`("to", "in an item of `refs`")`): such a key is told where it goes rather than which
    /// allowed key it resembles.
    pub fn mapping_in(
        &self,
        diags: &mut Diagnostics,
        allowed: &[&str],
        elsewhere: &[(&str, &str)],
    ) -> Option<Mapping<'d>> {
        let Value::Mapping(map) = self.value else {
            diags.push(self.wrong_type(
                "a mapping",
                "write `key: value` lines indented under it, or `{key: value}`",
            ));
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        let mut misspelt = Vec::new();
        for (k, v) in map {
            let Value::String(name) = k else {
                // The event pass has indexed such a key under its text; find it by position.
                diags.push(
                    self.error(
                        "wrong_type",
                        format!("a key in {} is not a string", self.describe()),
                    )
                    .help("write keys as plain words"),
                );
                continue;
            };
            let child = self.child(name, v);
            if !allowed.is_empty() && !allowed.contains(&name.as_str()) {
                let mut d = child.key_error(
                    "unknown_key",
                    format!("unknown key {} in {}", quote(name), self.describe()),
                );
                let place = elsewhere.iter().find(|(k, _)| *k == name.as_str());
                d = d.help(match (place, closest(name, allowed)) {
                    (Some((_, place)), _) => format!(
                        "`{name}` belongs {place}; allowed keys here: {}",
                        allowed.join(", ")
                    ),
                    (None, Some(near)) => {
                        // A misspelt required key is this one problem, not also a missing key.
                        misspelt.push(near.to_owned());
                        format!(
                            "did you mean `{near}`? allowed keys: {}",
                            allowed.join(", ")
                        )
                    }
                    (None, None) => format!("allowed keys: {}", allowed.join(", ")),
                });
                diags.push(d);
                continue;
            }
            entries.push((name.as_str(), child));
        }
        Some(Mapping {
            node: self.clone(),
            entries,
            misspelt,
        })
    }
}

/// The YAML kind of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The allowed key nearest to a misspelt one, if it is near enough to be a typo.
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    if name.len() >= 3
        && let Some(hit) = allowed
            .iter()
            .find(|a| a.contains(name) || name.contains(**a))
    {
        return Some(hit);
    }
    allowed
        .iter()
        .map(|a| (edit_distance(name, a), *a))
        // Two edits turn any two-letter key into any other (`to` into `id`): short keys get one.
        .filter(|(d, a)| {
            *d <= if name.len().min(a.len()) <= 3 {
                1
            } else {
                2.max(a.len() / 3)
            }
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The entries of a mapping whose keys have been checked.
#[derive(Debug)]
pub struct Mapping<'d> {
    node: Node<'d>,
    entries: Vec<(&'d str, Node<'d>)>,
    /// Allowed keys an unknown key was reported as a misspelling of.
    misspelt: Vec<String>,
}

impl<'d> Mapping<'d> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<Node<'d>> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, n)| n.clone())
    }

    /// The value of `key`, reporting its absence; `example` shows what to write.
    pub fn require(&self, diags: &mut Diagnostics, key: &str, example: &str) -> Option<Node<'d>> {
        let node = self.get(key);
        if node.is_none() && !self.misspelt.iter().any(|m| m == key) {
            diags.push(
                Diagnostic::new(
                    "missing_key",
                    self.node.doc.file(),
                    self.node.key_pos(),
                    format!("missing required key `{key}` in {}", self.node.describe()),
                )
                .help(format!("add `{example}`")),
            );
        }
        node
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&'d str, Node<'d>)> + '_ {
        self.entries.iter().map(|(k, n)| (*k, n.clone()))
    }

    /// The mapping itself.
    pub const fn node(&self) -> &Node<'d> {
        &self.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, Diagnostic> {
        Document::parse("f.yaml", text.as_bytes())
    }

    fn refused(text: &str) -> (String, Pos) {
        let d = parse(text).expect_err("must be refused");
        (d.code.to_owned(), d.pos())
    }

    #[test]
    fn indexes_value_positions() {
        let doc = parse("a: 1\nlist:\n  - x: hello\n    y: [1, 2]\n").expect("valid");
        let mut diags = Diagnostics::default();
        let root = doc.root().mapping(&mut diags, &[]).expect("mapping");
        let list = root
            .get("list")
            .expect("list")
            .sequence(&mut diags)
            .expect("seq");
        let item = list[0].mapping(&mut diags, &[]).expect("map");
        let x = item.get("x").expect("x");
        assert_eq!(x.path(), "list[0].x");
        assert_eq!(x.pos(), Pos::new(3, 8));
        assert_eq!(x.key_pos(), Pos::new(3, 5));
        assert_eq!(list[0].pos(), Pos::new(3, 5));
        assert!(diags.is_empty());
    }

    #[test]
    fn refuses_yaml_features_at_their_position() {
        assert_eq!(refused("a: &x 1\n"), ("yaml_anchor".into(), Pos::new(1, 4)));
        assert_eq!(
            refused("a:\n  b: !t &x 1\n"),
            ("yaml_anchor".into(), Pos::new(2, 9))
        );
        assert_eq!(
            refused("a: [x, !t y]\n"),
            ("yaml_tag".into(), Pos::new(1, 8))
        );
        assert_eq!(refused("a: 1\nb: *x\n").0, "yaml_syntax");
        assert_eq!(refused("a: !!str 1\n").0, "yaml_tag");
        assert_eq!(
            refused("a: 1\na: 2\n"),
            ("duplicate_key".into(), Pos::new(2, 1))
        );
        assert_eq!(refused("a: 1\n---\nb: 2\n").0, "multiple_documents");
        assert_eq!(refused("? [a]\n: 1\n").0, "complex_key");
        assert_eq!(
            refused("a: [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]\n").0,
            "too_deep"
        );
    }

    #[test]
    fn refuses_bad_bytes() {
        let d = Document::parse("f.yaml", b"a: 1\nb: \xff\n").expect_err("invalid utf-8");
        assert_eq!((d.code, d.pos()), ("invalid_utf8", Pos::new(2, 4)));
        let d = Document::parse("f.yaml", b"a: 1\r\nb: 2\rc: \xff").expect_err("invalid utf-8");
        assert_eq!(
            d.pos(),
            Pos::new(3, 4),
            "CRLF and a lone CR each break a line"
        );
        let d = parse("a: 1\nb: x\u{2028}y\n").expect_err("line separator");
        assert_eq!((d.code, d.pos()), ("control_character", Pos::new(2, 5)));
        let d = parse("a: 1\nb: x\u{0}y\n").expect_err("nul");
        assert_eq!((d.code, d.pos()), ("control_character", Pos::new(2, 5)));
    }

    #[test]
    fn size_limit_is_inclusive() {
        let mut text = String::from("a: ");
        text.push_str(&"x".repeat(MAX_FILE_BYTES as usize - 4));
        text.push('\n');
        assert_eq!(text.len() as u64, MAX_FILE_BYTES);
        assert!(parse(&text).is_ok());
        text.push(' ');
        assert_eq!(refused(&text).0, "file_too_large");
    }

    #[test]
    fn strings_are_not_coerced() {
        let doc = parse("a: 12\nb: ~\nc: true\nd: '12'\n").expect("valid");
        let mut diags = Diagnostics::default();
        let root = doc.root().mapping(&mut diags, &[]).expect("map");
        for key in ["a", "b", "c"] {
            assert!(root.get(key).expect("key").string(&mut diags).is_none());
        }
        assert_eq!(root.get("d").expect("d").string(&mut diags), Some("12"));
        assert_eq!(diags.len(), 3);
    }

    #[test]
    fn suggests_near_keys() {
        assert_eq!(
            closest("enviroment", &["environment", "id"]),
            Some("environment")
        );
        assert_eq!(closest("zzz", &["environment", "id"]), None);
        assert_eq!(
            closest("note", &["window", "rollout_note"]),
            Some("rollout_note")
        );
    }
}

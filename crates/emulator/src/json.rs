//! An order-preserving JSON value and Python-`json.dumps`-style serialisation.
//!
//! The real manager is written in Python: its bodies come from `json.dumps` with the default
//! separators (`", "` and `": "`) and `ensure_ascii=True`, with keys in insertion order, and
//! GraphQL `JSONString` fields (such as `service_ports`) are such strings embedded in the
//! response. [`J`] keeps object keys in the order they were added so the emulator's output
//! reads the same.

use std::fmt::Write as _;

/// A JSON value whose objects keep their insertion order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    /// An empty object.
    pub(crate) fn obj() -> Self {
        J::Obj(Vec::new())
    }

    /// Adds `key: value` to an object (no-op on other variants); builder style.
    pub(crate) fn with(mut self, key: &str, value: impl Into<J>) -> Self {
        self.push(key, value);
        self
    }

    /// Adds `key: value` to an object (no-op on other variants).
    pub(crate) fn push(&mut self, key: &str, value: impl Into<J>) {
        if let J::Obj(fields) = self {
            fields.push((key.to_owned(), value.into()));
        }
    }

    /// The value with every object's keys in PostgreSQL `jsonb` order (shorter keys first,
    /// then bytewise), as a value read back from a `jsonb` column is.
    pub(crate) fn jsonb_ordered(self) -> Self {
        match self {
            J::Arr(items) => J::Arr(items.into_iter().map(J::jsonb_ordered).collect()),
            J::Obj(mut fields) => {
                fields.sort_by(|(a, _), (b, _)| {
                    a.len()
                        .cmp(&b.len())
                        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
                });
                J::Obj(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k, v.jsonb_ordered()))
                        .collect(),
                )
            }
            other => other,
        }
    }

    /// Serialises like Python's `json.dumps(value)`.
    pub(crate) fn dumps(&self) -> String {
        let mut out = String::new();
        self.write_py(&mut out, (", ", ": "));
        out
    }

    /// The same without spaces, as 26.x writes problem bodies.
    pub(crate) fn dumps_compact(&self) -> String {
        let mut out = String::new();
        self.write_py(&mut out, (",", ":"));
        out
    }

    /// `seps`: what goes between items and between a key and its value.
    fn write_py(&self, out: &mut String, seps: (&str, &str)) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(true) => out.push_str("true"),
            J::Bool(false) => out.push_str("false"),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            J::Str(s) => write_py_str(out, s),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(seps.0);
                    }
                    item.write_py(out, seps);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(seps.0);
                    }
                    write_py_str(out, key);
                    out.push_str(seps.1);
                    value.write_py(out, seps);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string literal with Python's escaping (`ensure_ascii=True`).
fn write_py_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<&str> for J {
    fn from(s: &str) -> Self {
        J::Str(s.to_owned())
    }
}

impl From<String> for J {
    fn from(s: String) -> Self {
        J::Str(s)
    }
}

impl From<&String> for J {
    fn from(s: &String) -> Self {
        J::Str(s.clone())
    }
}

impl From<bool> for J {
    fn from(b: bool) -> Self {
        J::Bool(b)
    }
}

impl From<i64> for J {
    fn from(i: i64) -> Self {
        J::Int(i)
    }
}

impl From<u16> for J {
    fn from(i: u16) -> Self {
        J::Int(i64::from(i))
    }
}

impl From<usize> for J {
    fn from(i: usize) -> Self {
        J::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

impl<T: Into<J>> From<Option<T>> for J {
    fn from(value: Option<T>) -> Self {
        value.map_or(J::Null, Into::into)
    }
}

impl<T: Into<J>> From<Vec<T>> for J {
    fn from(items: Vec<T>) -> Self {
        J::Arr(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_like_python() {
        let value = J::Arr(vec![J::obj()
            .with("name", "sshd")
            .with("protocol", "tcp")
            .with("container_ports", vec![2200u16])
            .with("is_inference", false)
            .with("note", J::Null)]);
        assert_eq!(
            value.dumps(),
            r#"[{"name": "sshd", "protocol": "tcp", "container_ports": [2200], "is_inference": false, "note": null}]"#
        );
    }

    #[test]
    fn jsonb_key_order() {
        let value = J::obj()
            .with("name", "sshd")
            .with("protocol", "tcp")
            .with("container_ports", vec![2200u16])
            .with("host_ports", vec![12200u16])
            .with("is_inference", false)
            .with("nam", J::obj().with("bb", 1i64).with("a", 2i64));
        assert_eq!(
            value.jsonb_ordered().dumps(),
            r#"{"nam": {"a": 2, "bb": 1}, "name": "sshd", "protocol": "tcp", "host_ports": [12200], "is_inference": false, "container_ports": [2200]}"#
        );
    }

    #[test]
    fn escapes_like_python() {
        assert_eq!(J::from("a\"b\\c\n").dumps(), r#""a\"b\\c\n""#);
        assert_eq!(J::from("é😀\u{1}").dumps(), r#""\u00e9\ud83d\ude00\u0001""#);
    }
}

//! Request parameters as the manager's `check_api_params` (trafaret) reads them: a JSON body
//! when there is one, else the query string; unknown keys, missing keys and bad values give
//! 400 `invalid-api-params` "Input validation error" with per-key messages as `data`.

use std::collections::HashMap;

use serde_json::Value;

use crate::json::J;
use crate::problem::Problem;

/// What a key accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// `t.String` (non-blank).
    Str,
    /// `t.Null | t.String`.
    OptStr,
    /// `t.Null | t.Int[min:max]` (strings are converted).
    OptInt { min: i64, max: i64 },
    /// `t.Null | t.Mapping(t.String, t.Any)`.
    OptMap,
}

/// One key of a `t.Dict`: its names (the first is canonical, the rest are aliases).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub(crate) names: &'static [&'static str],
    pub(crate) required: bool,
    pub(crate) kind: Kind,
}

impl Key {
    pub(crate) const fn required(names: &'static [&'static str], kind: Kind) -> Self {
        Key {
            names,
            required: true,
            kind,
        }
    }

    pub(crate) const fn optional(names: &'static [&'static str], kind: Kind) -> Self {
        Key {
            names,
            required: false,
            kind,
        }
    }
}

/// Decodes `%XX` escapes (and `+` as space when `plus_as_space`), lossily as UTF-8.
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a raw query string into ordered key/value pairs.
pub(crate) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The raw parameters: the JSON body if non-empty, else the query (values as strings).
pub(crate) fn raw_params(body: &[u8], query: Option<&str>) -> Result<Value, Problem> {
    if body.is_empty() {
        let mut map = serde_json::Map::new();
        for (k, v) in parse_query(query) {
            // MultiDict -> dict keeps the first value.
            map.entry(k).or_insert(Value::String(v));
        }
        return Ok(Value::Object(map));
    }
    serde_json::from_slice(body).map_err(|_| Problem::invalid_api_params().msg("Malformed body"))
}

/// Checks `raw` against `keys`; returns the values by canonical name (absent optional keys
/// map to `Null`).
pub(crate) fn check(raw: &Value, keys: &[Key]) -> Result<HashMap<&'static str, Value>, Problem> {
    let Some(map) = raw.as_object() else {
        return Err(Problem::invalid_api_params()
            .msg("Input validation error")
            .data("value is not a dict"));
    };
    let mut errors: Vec<(String, J)> = Vec::new();
    let mut out = HashMap::new();
    for key in keys {
        let Some(&canonical) = key.names.first() else {
            continue;
        };
        let found = key.names.iter().find_map(|n| map.get(*n));
        match found {
            None | Some(Value::Null) if key.required => {
                if found.is_none() {
                    errors.push((canonical.to_owned(), J::from("is required")));
                } else {
                    errors.push((canonical.to_owned(), J::from("value is not a string")));
                }
            }
            None => {
                out.insert(canonical, Value::Null);
            }
            Some(value) => match check_value(value, key.kind) {
                Ok(v) => {
                    out.insert(canonical, v);
                }
                Err(msg) => errors.push((canonical.to_owned(), error_of(key.kind, msg))),
            },
        }
    }
    for name in map.keys() {
        if !keys.iter().any(|k| k.names.contains(&name.as_str())) {
            errors.push((name.clone(), J::from(format!("{name} is not allowed key"))));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Problem::input_validation(errors))
    }
}

/// One field of a 26.x request model (pydantic): its name and what it accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) required: bool,
    /// `Some((min, max))`: an integer within the bounds; `None`: a string.
    pub(crate) int: Option<(i64, i64)>,
}

/// Checks query parameters against a 26.x request model named `model`: unknown keys are
/// ignored; the first problem is a 400 `generic-bad-request` whose `msg` is pydantic's report,
/// as `BackendAISchemaValidationFailed` prints it.
pub(crate) fn check_model(
    model: &str,
    query: Option<&str>,
    fields: &[Field],
) -> Result<HashMap<&'static str, Value>, Problem> {
    let mut given: Vec<(String, String)> = Vec::new();
    for (k, v) in parse_query(query) {
        if !given.iter().any(|(seen, _)| *seen == k) {
            given.push((k, v));
        }
    }
    let mut out = HashMap::new();
    for field in fields {
        let Some((_, text)) = given.iter().find(|(k, _)| k == field.name) else {
            if field.required {
                let input = format!(
                    "{{{}}}",
                    given
                        .iter()
                        .map(|(k, v)| format!("{}: {}", py_str(k), py_str(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Err(schema_failure(
                    model,
                    field.name,
                    "missing",
                    "Field required",
                    &input,
                    "dict",
                ));
            }
            out.insert(field.name, Value::Null);
            continue;
        };
        let value = match field.int {
            None => Value::String(text.clone()),
            Some((min, max)) => {
                let fail = |kind: &str, what: String| {
                    schema_failure(model, field.name, kind, &what, &py_str(text), "str")
                };
                let n: i64 = text.trim().parse().map_err(|_| {
                    fail(
                        "int_parsing",
                        "Input should be a valid integer, unable to parse string as an integer"
                            .into(),
                    )
                })?;
                if n < min {
                    return Err(fail(
                        "greater_than_equal",
                        format!("Input should be greater than or equal to {min}"),
                    ));
                }
                if n > max {
                    return Err(fail(
                        "less_than_equal",
                        format!("Input should be less than or equal to {max}"),
                    ));
                }
                Value::from(n)
            }
        };
        out.insert(field.name, value);
    }
    Ok(out)
}

/// pydantic's report of one invalid field, as the 26.x manager sends it.
fn schema_failure(
    model: &str,
    field: &str,
    kind: &str,
    message: &str,
    input: &str,
    input_type: &str,
) -> Problem {
    let url = format!("https://errors.pydantic.dev/2.13/v/{kind}");
    Problem::new(
        axum::http::StatusCode::BAD_REQUEST,
        "generic-bad-request",
        "Invalid or Missing API Parameters.",
    )
    .code("api_parsing_invalid-parameters")
    .msg(format!(
        "<BackendAISchemaValidationFailed(400): Schema validation failed. (1 validation error \
         for {model}\n{field}\n  {message} [type={kind}, input_value={input}, \
         input_type={input_type}]\n    For further information visit {url})>\n -> extra_data: \
         {{'errors': [{{'type': '{kind}', 'loc': ('{field}',), 'msg': '{message}', 'url': '{url}'}}]}}"
    ))
}

/// A string as Python's `repr` writes it (single quotes unless it holds one and no double).
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The error trafaret reports for a value: an optional kind is `t.Null | X`, whose `Or`
/// error lists each alternative's complaint by index.
fn error_of(kind: Kind, msg: String) -> J {
    match kind {
        Kind::Str => J::from(msg),
        Kind::OptStr | Kind::OptInt { .. } | Kind::OptMap => {
            J::obj().with("0", "value should be None").with("1", msg)
        }
    }
}

fn check_value(value: &Value, kind: Kind) -> Result<Value, String> {
    match (kind, value) {
        (Kind::OptStr | Kind::OptInt { .. } | Kind::OptMap, Value::Null) => Ok(Value::Null),
        (Kind::Str, Value::String(s)) if s.is_empty() => Err("blank value is not allowed".into()),
        (Kind::Str | Kind::OptStr, Value::String(s)) => Ok(Value::String(s.clone())),
        (Kind::Str | Kind::OptStr, _) => Err("value is not a string".into()),
        (Kind::OptInt { min, max }, v) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| "value can't be converted to int".to_owned())?;
            if n < min {
                Err(format!("value is less than {min}"))
            } else if n > max {
                Err(format!("value is greater than {max}"))
            } else {
                Ok(Value::from(n))
            }
        }
        (Kind::OptMap, Value::Object(_)) => Ok(value.clone()),
        (Kind::OptMap, _) => Err("value is not a dict".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[Key] = &[
        Key::required(&["app", "service"], Kind::Str),
        Key::optional(
            &["port"],
            Kind::OptInt {
                min: 1024,
                max: 65535,
            },
        ),
        Key::optional(&["envs"], Kind::OptStr),
    ];

    #[test]
    fn query_params() {
        let raw = raw_params(b"", Some("service=sshd&port=2200&envs=%7B%22A%22%3A1%7D")).unwrap();
        let params = check(&raw, KEYS).unwrap();
        assert_eq!(params["app"], "sshd");
        assert_eq!(params["port"], 2200);
        assert_eq!(params["envs"], r#"{"A":1}"#);
    }

    #[test]
    fn validation_errors() {
        let raw = raw_params(b"", Some("owner_access_key=AK")).unwrap();
        let err = check(&raw, KEYS).unwrap_err();
        assert_eq!(err.msg.as_deref(), Some("Input validation error"));
        assert_eq!(
            err.data.clone().unwrap().dumps(),
            r#"{"app": "is required", "owner_access_key": "owner_access_key is not allowed key"}"#
        );
        let raw = raw_params(b"", Some("app=x&port=80")).unwrap();
        let err = check(&raw, KEYS).unwrap_err();
        assert_eq!(
            err.data.clone().unwrap().dumps(),
            r#"{"port": {"0": "value should be None", "1": "value is less than 1024"}}"#
        );
        let err = raw_params(b"{nope", None).unwrap_err();
        assert_eq!(err.msg.as_deref(), Some("Malformed body"));
    }

    #[test]
    fn model_params_as_26_x_reports_them() {
        const FIELDS: &[Field] = &[
            Field {
                name: "app",
                required: true,
                int: None,
            },
            Field {
                name: "port",
                required: false,
                int: Some((1024, 65535)),
            },
        ];
        let p = check_model("M", Some("app=echo&bogus=1&port=7008"), FIELDS).unwrap();
        assert_eq!(
            (p["app"].as_str(), p["port"].as_i64()),
            (Some("echo"), Some(7008))
        );
        let err = check_model("M", Some("service=echo"), FIELDS).unwrap_err();
        assert_eq!(
            err.msg.as_deref().unwrap().lines().take(3).collect::<Vec<_>>(),
            [
                "<BackendAISchemaValidationFailed(400): Schema validation failed. (1 validation error for M",
                "app",
                "  Field required [type=missing, input_value={'service': 'echo'}, input_type=dict]",
            ]
        );
        let err = check_model("M", Some("app=x&port=80"), FIELDS).unwrap_err();
        assert!(err.msg.as_deref().unwrap().contains("greater than or equal to 1024 [type=greater_than_equal, input_value='80', input_type=str]"));
        assert_eq!(py_str("it's"), "\"it's\"");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%zz%", true), "a b c%zz%");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}

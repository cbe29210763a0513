//! A small hand-written GraphQL subset: enough of the manager's schema for session listing.
//!
//! Supported: one or more `query` operations (anonymous or named, `operationName` picks one),
//! variable definitions with defaults, arguments (variables and literals), aliases,
//! `__typename`, comments and commas. The schema:
//!
//! ```graphql
//! type Queries { compute_session_list(limit: Int!, offset: Int!, status: String,
//!                  access_key: String, group_id: String, domain_name: String,
//!                  scaling_group: String, order: String, filter: String): ComputeSessionList }
//! type ComputeSessionList { items: [ComputeSession]  total_count: Int }
//! type ComputeSession { id session_id name session_name sess_id type session_type status
//!   status_info image architecture scaling_group group_id group_name domain_name user_id
//!   user_uuid user_email access_key created_at terminated_at starts_at tag cluster_mode
//!   cluster_size occupied_slots mounts result service_ports }
//! ```
//!
//! `service_ports` (and `occupied_slots`) are `JSONString`s: JSON encoded as a string, null
//! unless the session is RUNNING. `order` and `filter` are accepted and ignored. Fragments,
//! directives and mutations are reported as GraphQL errors. Malformed input never panics: it
//! becomes a GraphQL error with a location.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::{Role, SESSION_STATUSES};
use crate::json::J;
use crate::state::{python_isoformat, Shared};

/// A GraphQL error with an optional source location and response path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GqlError {
    pub(crate) message: String,
    pub(crate) location: Option<(usize, usize)>,
    pub(crate) path: Vec<String>,
}

impl GqlError {
    fn at(message: impl Into<String>, pos: Pos) -> Self {
        GqlError {
            message: message.into(),
            location: Some((pos.line, pos.column)),
            path: Vec::new(),
        }
    }

    fn plain(message: impl Into<String>) -> Self {
        GqlError {
            message: message.into(),
            location: None,
            path: Vec::new(),
        }
    }

    /// The `{"message", "locations"?, "path"?}` object (26.x: a resolver's error also has
    /// `extensions.code`, first).
    pub(crate) fn to_json(&self) -> J {
        let mut obj = J::obj();
        if !self.path.is_empty() && crate::release::current().error_codes {
            obj.push(
                "extensions",
                J::obj().with("code", "backendai_generic_internal-error"),
            );
        }
        obj.push("message", self.message.as_str());
        if let Some((line, column)) = self.location {
            obj.push(
                "locations",
                J::Arr(vec![J::obj().with("line", line).with("column", column)]),
            );
        }
        if !self.path.is_empty() {
            obj.push("path", self.path.clone());
        }
        obj
    }
}

/// The outcome of one GraphQL request: `data` (`None` = null) and errors.
#[derive(Debug, Clone)]
pub(crate) struct GqlResponse {
    pub(crate) data: Option<J>,
    pub(crate) errors: Vec<GqlError>,
}

impl GqlResponse {
    /// `{"data": ..., "errors"?: [...]}` as `ExecutionResult.formatted`.
    pub(crate) fn formatted(&self) -> J {
        let mut obj = J::obj().with("data", self.data.clone().unwrap_or(J::Null));
        if !self.errors.is_empty() {
            obj.push(
                "errors",
                J::Arr(self.errors.iter().map(GqlError::to_json).collect()),
            );
        }
        obj
    }

    fn failed(errors: Vec<GqlError>) -> Self {
        GqlResponse { data: None, errors }
    }
}

// ------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Punct(c) => format!("'{c}'"),
            Tok::Spread => "'...'".to_owned(),
            Tok::Name(n) => format!("Name '{n}'"),
            Tok::Int(i) => format!("Int '{i}'"),
            Tok::Float(f) => format!("Float '{f}'"),
            Tok::Str(s) => format!("String \"{s}\""),
            Tok::Eof => "<EOF>".to_owned(),
        }
    }
}

fn lex(source: &str) -> Result<Vec<(Tok, Pos)>, GqlError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let syntax = |msg: String, line: usize, column: usize| {
        GqlError::at(format!("Syntax Error: {msg}"), Pos { line, column })
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, column: col };
        match c {
            '\n' => {
                i += 1;
                line += 1;
                col = 1;
            }
            '\r' => {
                i += 1;
                if chars.get(i) != Some(&'\n') {
                    line += 1;
                    col = 1;
                }
            }
            ' ' | '\t' | ',' | '\u{feff}' => {
                i += 1;
                col += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                    i += 1;
                }
            }
            '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                tokens.push((Tok::Punct(c), pos));
                i += 1;
                col += 1;
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                    tokens.push((Tok::Spread, pos));
                    i += 3;
                    col += 3;
                } else {
                    return Err(syntax("Unexpected '.'.".into(), line, col));
                }
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                col += i - start;
                tokens.push((Tok::Name(chars[start..i].iter().collect()), pos));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                let mut is_float = false;
                while i < chars.len() {
                    let d = chars[i];
                    if d.is_ascii_digit() {
                        i += 1;
                    } else if d == '.' || d == 'e' || d == 'E' {
                        is_float = true;
                        i += 1;
                    } else if (d == '+' || d == '-') && matches!(chars[i - 1], 'e' | 'E') {
                        i += 1;
                    } else {
                        break;
                    }
                }
                col += i - start;
                let text: String = chars[start..i].iter().collect();
                let tok = if is_float {
                    text.parse::<f64>().ok().map(Tok::Float)
                } else {
                    text.parse::<i64>().ok().map(Tok::Int)
                };
                match tok {
                    Some(tok) => tokens.push((tok, pos)),
                    None => {
                        return Err(syntax(
                            format!("Invalid number, got '{text}'."),
                            pos.line,
                            pos.column,
                        ))
                    }
                }
            }
            '"' => {
                if chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"') {
                    // Block string: raw contents up to the closing triple quote.
                    i += 3;
                    col += 3;
                    let mut text = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(syntax("Unterminated string.".into(), line, col)),
                            Some('"')
                                if chars.get(i + 1) == Some(&'"')
                                    && chars.get(i + 2) == Some(&'"') =>
                            {
                                i += 3;
                                col += 3;
                                break;
                            }
                            Some('\n') => {
                                text.push('\n');
                                i += 1;
                                line += 1;
                                col = 1;
                            }
                            Some(&ch) => {
                                text.push(ch);
                                i += 1;
                                col += 1;
                            }
                        }
                    }
                    tokens.push((Tok::Str(text.trim().to_owned()), pos));
                    continue;
                }
                i += 1;
                col += 1;
                let mut text = String::new();
                loop {
                    match chars.get(i) {
                        None | Some('\n') | Some('\r') => {
                            return Err(syntax("Unterminated string.".into(), line, col))
                        }
                        Some('"') => {
                            i += 1;
                            col += 1;
                            break;
                        }
                        Some('\\') => {
                            let esc = chars.get(i + 1).copied();
                            let simple = match esc {
                                Some('"') => Some('"'),
                                Some('\\') => Some('\\'),
                                Some('/') => Some('/'),
                                Some('b') => Some('\u{8}'),
                                Some('f') => Some('\u{c}'),
                                Some('n') => Some('\n'),
                                Some('r') => Some('\r'),
                                Some('t') => Some('\t'),
                                _ => None,
                            };
                            if let Some(ch) = simple {
                                text.push(ch);
                                i += 2;
                                col += 2;
                            } else if esc == Some('u') {
                                let hex: String = chars.iter().skip(i + 2).take(4).collect();
                                let ch =
                                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                                match ch {
                                    Some(ch) if hex.len() == 4 => text.push(ch),
                                    _ => {
                                        return Err(syntax(
                                            format!("Invalid Unicode escape sequence: '\\u{hex}'."),
                                            line,
                                            col,
                                        ))
                                    }
                                }
                                i += 6;
                                col += 6;
                            } else {
                                return Err(syntax(
                                    "Invalid character escape sequence.".into(),
                                    line,
                                    col,
                                ));
                            }
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                            col += 1;
                        }
                    }
                }
                tokens.push((Tok::Str(text), pos));
            }
            other => {
                return Err(syntax(
                    format!("Unexpected character: '{other}'."),
                    line,
                    col,
                ));
            }
        }
    }
    tokens.push((Tok::Eof, Pos { line, column: col }));
    Ok(tokens)
}

// ------------------------------------------------------------------------------------------
// Parser

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Var(String, Pos),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Enum(String),
    List(Vec<Val>),
    Object(Vec<(String, Val)>),
}

#[derive(Debug, Clone)]
struct VarDef {
    name: String,
    type_name: String,
    non_null: bool,
    default: Option<Val>,
    pos: Pos,
}

#[derive(Debug, Clone)]
struct Field {
    alias: Option<String>,
    name: String,
    args: Vec<(String, Val, Pos)>,
    selections: Vec<Field>,
    has_selection: bool,
    pos: Pos,
}

impl Field {
    fn response_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone)]
struct Operation {
    kind: String,
    name: Option<String>,
    var_defs: Vec<VarDef>,
    selections: Vec<Field>,
}

struct Parser {
    tokens: Vec<(Tok, Pos)>,
    at: usize,
    depth: usize,
}

/// Selection sets and values nest at most this deep (a guard against stack exhaustion).
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.at).map_or(&Tok::Eof, |(t, _)| t)
    }

    fn pos(&self) -> Pos {
        self.tokens
            .get(self.at)
            .or(self.tokens.last())
            .map_or(Pos { line: 1, column: 1 }, |(_, p)| *p)
    }

    fn next(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        tok
    }

    fn unexpected(&self, expected: &str) -> GqlError {
        GqlError::at(
            format!(
                "Syntax Error: Expected {expected}, found {}.",
                self.peek().describe()
            ),
            self.pos(),
        )
    }

    fn expect_punct(&mut self, c: char) -> Result<(), GqlError> {
        if *self.peek() == Tok::Punct(c) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}'")))
        }
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if *self.peek() == Tok::Punct(c) {
            self.next();
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Result<String, GqlError> {
        match self.peek() {
            Tok::Name(n) => {
                let n = n.clone();
                self.next();
                Ok(n)
            }
            _ => Err(self.unexpected("Name")),
        }
    }

    fn enter(&mut self) -> Result<(), GqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GqlError::at(
                "Syntax Error: Document is too deeply nested.",
                self.pos(),
            ));
        }
        Ok(())
    }

    fn document(&mut self) -> Result<Vec<Operation>, GqlError> {
        let mut ops = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::Eof if !ops.is_empty() => return Ok(ops),
                Tok::Punct('{') => ops.push(Operation {
                    kind: "query".to_owned(),
                    name: None,
                    var_defs: Vec::new(),
                    selections: self.selection_set()?,
                }),
                Tok::Name(kw) if kw == "query" || kw == "mutation" || kw == "subscription" => {
                    self.next();
                    let name = match self.peek() {
                        Tok::Name(_) => Some(self.name()?),
                        _ => None,
                    };
                    let var_defs = self.var_defs()?;
                    if *self.peek() == Tok::Punct('@') {
                        return Err(GqlError::at(
                            "The emulator does not support directives.",
                            self.pos(),
                        ));
                    }
                    ops.push(Operation {
                        kind: kw,
                        name,
                        var_defs,
                        selections: self.selection_set()?,
                    });
                }
                Tok::Name(kw) if kw == "fragment" => {
                    return Err(GqlError::at(
                        "The emulator does not support fragments.",
                        self.pos(),
                    ))
                }
                _ => return Err(self.unexpected("'{', query, mutation or subscription")),
            }
        }
    }

    fn var_defs(&mut self) -> Result<Vec<VarDef>, GqlError> {
        let mut defs = Vec::new();
        if !self.eat_punct('(') {
            return Ok(defs);
        }
        while !self.eat_punct(')') {
            let pos = self.pos();
            self.expect_punct('$')?;
            let name = self.name()?;
            self.expect_punct(':')?;
            let (type_name, non_null) = self.type_ref()?;
            let default = if self.eat_punct('=') {
                Some(self.value(true)?)
            } else {
                None
            };
            defs.push(VarDef {
                name,
                type_name,
                non_null,
                default,
                pos,
            });
        }
        Ok(defs)
    }

    fn type_ref(&mut self) -> Result<(String, bool), GqlError> {
        let type_name = if self.eat_punct('[') {
            self.enter()?;
            let (inner, inner_nn) = self.type_ref()?;
            self.expect_punct(']')?;
            self.depth -= 1;
            format!("[{inner}{}]", if inner_nn { "!" } else { "" })
        } else {
            self.name()?
        };
        let non_null = self.eat_punct('!');
        Ok((type_name, non_null))
    }

    fn selection_set(&mut self) -> Result<Vec<Field>, GqlError> {
        self.enter()?;
        self.expect_punct('{')?;
        let mut fields = Vec::new();
        loop {
            match self.peek() {
                Tok::Punct('}') if fields.is_empty() => return Err(self.unexpected("Name")),
                Tok::Punct('}') => {
                    self.next();
                    break;
                }
                Tok::Spread => {
                    return Err(GqlError::at(
                        "The emulator does not support fragments.",
                        self.pos(),
                    ))
                }
                Tok::Name(_) => fields.push(self.field()?),
                _ => return Err(self.unexpected("Name")),
            }
        }
        self.depth -= 1;
        Ok(fields)
    }

    fn field(&mut self) -> Result<Field, GqlError> {
        let pos = self.pos();
        let first = self.name()?;
        let (alias, name) = if self.eat_punct(':') {
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let mut args = Vec::new();
        if self.eat_punct('(') {
            while !self.eat_punct(')') {
                let arg_pos = self.pos();
                let arg = self.name()?;
                self.expect_punct(':')?;
                args.push((arg, self.value(false)?, arg_pos));
            }
        }
        if *self.peek() == Tok::Punct('@') {
            return Err(GqlError::at(
                "The emulator does not support directives.",
                self.pos(),
            ));
        }
        let (selections, has_selection) = if *self.peek() == Tok::Punct('{') {
            (self.selection_set()?, true)
        } else {
            (Vec::new(), false)
        };
        Ok(Field {
            alias,
            name,
            args,
            selections,
            has_selection,
            pos,
        })
    }

    fn value(&mut self, constant: bool) -> Result<Val, GqlError> {
        let pos = self.pos();
        match self.next() {
            Tok::Punct('$') if !constant => Ok(Val::Var(self.name()?, pos)),
            Tok::Int(i) => Ok(Val::Int(i)),
            Tok::Float(f) => Ok(Val::Float(f)),
            Tok::Str(s) => Ok(Val::Str(s)),
            Tok::Name(n) => Ok(match n.as_str() {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                "null" => Val::Null,
                _ => Val::Enum(n),
            }),
            Tok::Punct('[') => {
                self.enter()?;
                let mut items = Vec::new();
                while !self.eat_punct(']') {
                    items.push(self.value(constant)?);
                }
                self.depth -= 1;
                Ok(Val::List(items))
            }
            Tok::Punct('{') => {
                self.enter()?;
                let mut fields = Vec::new();
                while !self.eat_punct('}') {
                    let key = self.name()?;
                    self.expect_punct(':')?;
                    fields.push((key, self.value(constant)?));
                }
                self.depth -= 1;
                Ok(Val::Object(fields))
            }
            _ => {
                self.at = self.at.saturating_sub(1);
                Err(self.unexpected("a value"))
            }
        }
    }
}

fn parse(source: &str) -> Result<Vec<Operation>, GqlError> {
    let tokens = lex(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    parser.document()
}

// ------------------------------------------------------------------------------------------
// Schema

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Scalar(&'static str),
    List(&'static str),
    Object(&'static str),
}

fn field_type(parent: &str, field: &str) -> Option<FieldType> {
    if field == "__typename" {
        return Some(FieldType::Scalar("String"));
    }
    match (parent, field) {
        ("Queries", "compute_session_list") => Some(FieldType::Object("ComputeSessionList")),
        ("ComputeSessionList", "items") => Some(FieldType::List("ComputeSession")),
        ("ComputeSessionList", "total_count") => Some(FieldType::Scalar("Int")),
        ("ComputeSession", f) => session_field_type(f).map(FieldType::Scalar),
        _ => None,
    }
}

fn session_field_type(field: &str) -> Option<&'static str> {
    Some(match field {
        "id" | "session_id" | "group_id" | "user_id" | "user_uuid" => "UUID",
        "created_at" | "terminated_at" | "starts_at" => "DateTime",
        "cluster_size" => "Int",
        "service_ports" | "occupied_slots" => "JSONString",
        "mounts" => "[String]",
        "name" | "session_name" | "sess_id" | "type" | "session_type" | "status"
        | "status_info" | "image" | "architecture" | "scaling_group" | "group_name"
        | "domain_name" | "user_email" | "access_key" | "tag" | "cluster_mode" | "result" => {
            "String"
        }
        _ => return None,
    })
}

/// `(name, type, required)` of `compute_session_list`'s arguments.
const LIST_ARGS: &[(&str, &str, bool)] = &[
    ("limit", "Int", true),
    ("offset", "Int", true),
    ("status", "String", false),
    ("access_key", "String", false),
    ("group_id", "String", false),
    ("domain_name", "String", false),
    ("scaling_group", "String", false),
    ("order", "String", false),
    ("filter", "String", false),
];

/// Checks the selections against the schema (graphql-core's validation phase).
fn validate(parent: &str, fields: &[Field], vars: &[VarDef], errors: &mut Vec<GqlError>) {
    for field in fields {
        let Some(ty) = field_type(parent, &field.name) else {
            errors.push(GqlError::at(
                format!("Cannot query field '{}' on type '{parent}'.", field.name),
                field.pos,
            ));
            continue;
        };
        let args_spec: &[(&str, &str, bool)] =
            if parent == "Queries" && field.name == "compute_session_list" {
                LIST_ARGS
            } else {
                &[]
            };
        for (arg, value, pos) in &field.args {
            if !args_spec.iter().any(|(n, _, _)| n == arg) {
                errors.push(GqlError::at(
                    format!(
                        "Unknown argument '{arg}' on field '{parent}.{}'.",
                        field.name
                    ),
                    *pos,
                ));
            }
            check_vars_defined(value, vars, errors);
        }
        for (name, ty_name, required) in args_spec {
            if *required && !field.args.iter().any(|(a, _, _)| a == name) {
                errors.push(GqlError::at(
                    format!(
                        "Field '{}' argument '{name}' of type '{ty_name}!' is required, but it was not provided.",
                        field.name
                    ),
                    field.pos,
                ));
            }
        }
        match ty {
            FieldType::Scalar(scalar) if field.has_selection => errors.push(GqlError::at(
                format!(
                    "Field '{}' must not have a selection since type '{scalar}' has no subfields.",
                    field.name
                ),
                field.pos,
            )),
            FieldType::Object(obj) | FieldType::List(obj) if !field.has_selection => {
                let shown = if matches!(ty, FieldType::List(_)) {
                    format!("[{obj}]")
                } else {
                    obj.to_owned()
                };
                errors.push(GqlError::at(
                    format!(
                        "Field '{}' of type '{shown}' must have a selection of subfields. Did you mean '{} {{ ... }}'?",
                        field.name, field.name
                    ),
                    field.pos,
                ));
            }
            FieldType::Object(obj) | FieldType::List(obj) => {
                validate(obj, &field.selections, vars, errors)
            }
            FieldType::Scalar(_) => {}
        }
    }
}

fn check_vars_defined(value: &Val, vars: &[VarDef], errors: &mut Vec<GqlError>) {
    match value {
        Val::Var(name, pos) if !vars.iter().any(|d| &d.name == name) => {
            errors.push(GqlError::at(
                format!("Variable '${name}' is not defined."),
                *pos,
            ));
        }
        Val::List(items) => items
            .iter()
            .for_each(|v| check_vars_defined(v, vars, errors)),
        Val::Object(fields) => fields
            .iter()
            .for_each(|(_, v)| check_vars_defined(v, vars, errors)),
        _ => {}
    }
}

// ------------------------------------------------------------------------------------------
// Execution

fn val_to_json(value: &Val, vars: &HashMap<String, Value>) -> Value {
    match value {
        Val::Var(name, _) => vars.get(name).cloned().unwrap_or(Value::Null),
        Val::Int(i) => Value::from(*i),
        Val::Float(f) => Value::from(*f),
        Val::Str(s) | Val::Enum(s) => Value::String(s.clone()),
        Val::Bool(b) => Value::Bool(*b),
        Val::Null => Value::Null,
        Val::List(items) => Value::Array(items.iter().map(|v| val_to_json(v, vars)).collect()),
        Val::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), val_to_json(v, vars)))
                .collect(),
        ),
    }
}

/// Coerces the request's variables to the operation's definitions.
fn coerce_variables(
    defs: &[VarDef],
    given: &serde_json::Map<String, Value>,
) -> Result<HashMap<String, Value>, Vec<GqlError>> {
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    for def in defs {
        let shown_type = format!("{}{}", def.type_name, if def.non_null { "!" } else { "" });
        let value = match given.get(&def.name) {
            Some(v) => v.clone(),
            None => match &def.default {
                Some(d) => val_to_json(d, &HashMap::new()),
                None if def.non_null => {
                    errors.push(GqlError::at(
                        format!(
                            "Variable '${}' of required type '{shown_type}' was not provided.",
                            def.name
                        ),
                        def.pos,
                    ));
                    continue;
                }
                None => Value::Null,
            },
        };
        if value.is_null() && def.non_null {
            errors.push(GqlError::at(
                format!(
                    "Variable '${}' of non-null type '{shown_type}' must not be null.",
                    def.name
                ),
                def.pos,
            ));
            continue;
        }
        let ok = match (def.type_name.as_str(), &value) {
            (_, Value::Null) => true,
            ("Int", v) => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            ("String" | "UUID" | "ID", v) => v.is_string(),
            ("Boolean", v) => v.is_boolean(),
            ("Float", v) => v.is_number(),
            _ => true,
        };
        if !ok {
            errors.push(GqlError::at(
                format!(
                    "Variable '${}' got invalid value {}; {} cannot represent value: {}",
                    def.name, value, def.type_name, value
                ),
                def.pos,
            ));
            continue;
        }
        out.insert(def.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Python's `repr()` of a string, as in the `KeyError` message for an unknown status.
fn python_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Runs a GraphQL request for `access_key`.
pub(crate) fn execute(
    shared: &Shared,
    access_key: &str,
    query: &str,
    variables: &serde_json::Map<String, Value>,
    operation_name: Option<&str>,
) -> GqlResponse {
    let operations = match parse(query) {
        Ok(ops) => ops,
        Err(e) => return GqlResponse::failed(vec![e]),
    };
    let operation = match operation_name {
        Some(name) => operations
            .iter()
            .find(|op| op.name.as_deref() == Some(name))
            .ok_or_else(|| GqlError::plain(format!("Unknown operation named '{name}'."))),
        None => match operations.as_slice() {
            [only] => Ok(only),
            _ => Err(GqlError::plain(
                "Must provide operation name if query contains multiple operations.",
            )),
        },
    };
    let operation = match operation {
        Ok(op) => op,
        Err(e) => return GqlResponse::failed(vec![e]),
    };
    if operation.kind != "query" {
        let root = if operation.kind == "mutation" {
            "Mutations"
        } else {
            "Subscriptions"
        };
        let errors = operation
            .selections
            .iter()
            .map(|f| {
                GqlError::at(
                    format!(
                        "Cannot query field '{}' on type '{root}'. The emulator serves queries only.",
                        f.name
                    ),
                    f.pos,
                )
            })
            .collect();
        return GqlResponse::failed(errors);
    }
    let mut errors = Vec::new();
    validate(
        "Queries",
        &operation.selections,
        &operation.var_defs,
        &mut errors,
    );
    if !errors.is_empty() {
        return GqlResponse::failed(errors);
    }
    let vars = match coerce_variables(&operation.var_defs, variables) {
        Ok(vars) => vars,
        Err(errors) => return GqlResponse::failed(errors),
    };

    let mut data = J::obj();
    let mut errors = Vec::new();
    for field in &operation.selections {
        let key = field.response_key().to_owned();
        if field.name == "__typename" {
            data.push(&key, "Queries");
            continue;
        }
        match compute_session_list(shared, access_key, field, &vars) {
            Ok(value) => data.push(&key, value),
            Err(mut e) => {
                e.path = vec![key.clone()];
                errors.push(e);
                data.push(&key, J::Null);
            }
        }
    }
    GqlResponse {
        data: Some(data),
        errors,
    }
}

fn arg_value(field: &Field, name: &str, vars: &HashMap<String, Value>) -> Value {
    field
        .args
        .iter()
        .find(|(n, _, _)| n == name)
        .map_or(Value::Null, |(_, v, _)| val_to_json(v, vars))
}

fn compute_session_list(
    shared: &Shared,
    access_key: &str,
    field: &Field,
    vars: &HashMap<String, Value>,
) -> Result<J, GqlError> {
    let int_arg = |name: &str| -> Result<i64, GqlError> {
        let value = arg_value(field, name, vars);
        value.as_i64().ok_or_else(|| {
            GqlError::at(
                format!("Int cannot represent non-integer value: {value}"),
                field.pos,
            )
        })
    };
    let str_arg = |name: &str| -> Result<Option<String>, GqlError> {
        match arg_value(field, name, vars) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(GqlError::at(
                format!("String cannot represent a non string value: {other}"),
                field.pos,
            )),
        }
    };
    let limit = int_arg("limit")?;
    let offset = int_arg("offset")?;
    let status = str_arg("status")?;
    let filter_key = str_arg("access_key")?;
    let group_id = str_arg("group_id")?;
    let domain_name = str_arg("domain_name")?;
    let scaling_group = str_arg("scaling_group")?;

    let statuses: Option<Vec<String>> = match status {
        None => None,
        Some(text) => {
            let mut list = Vec::new();
            for s in text.split(',') {
                if !SESSION_STATUSES.contains(&s) {
                    return Err(GqlError::at(python_repr(s), field.pos));
                }
                list.push(s.to_owned());
            }
            Some(list)
        }
    };
    let is_admin = shared.role_of(access_key) != Role::User;
    let mut sessions: Vec<_> = shared
        .sessions
        .iter()
        .filter(|s| {
            if is_admin {
                filter_key.as_deref().is_none_or(|k| s.owner == k)
            } else {
                s.owner == access_key
            }
        })
        .filter(|s| {
            group_id
                .as_deref()
                .is_none_or(|g| s.group_id.to_string() == g)
        })
        .filter(|_| domain_name.as_deref().is_none_or(|d| d == "default"))
        .filter(|s| {
            scaling_group
                .as_deref()
                .is_none_or(|g| s.scaling_group == g)
        })
        .filter(|s| {
            statuses
                .as_ref()
                .is_none_or(|list| list.iter().any(|st| *st == s.status()))
        })
        .collect();
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let total = sessions.len();
    let offset = usize::try_from(offset.max(0)).unwrap_or(0);
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    let page: Vec<_> = sessions.into_iter().skip(offset).take(limit).collect();

    let mut out = J::obj();
    for sub in &field.selections {
        let key = sub.response_key();
        match sub.name.as_str() {
            "__typename" => out.push(key, "ComputeSessionList"),
            "total_count" => out.push(key, total),
            "items" => out.push(
                key,
                J::Arr(
                    page.iter()
                        .map(|s| session_item(shared, s, &sub.selections))
                        .collect(),
                ),
            ),
            _ => out.push(key, J::Null),
        }
    }
    Ok(out)
}

fn session_item(shared: &Shared, s: &crate::state::SessionRt, fields: &[Field]) -> J {
    let mut item = J::obj();
    for f in fields {
        let value: J = match f.name.as_str() {
            "__typename" => "ComputeSession".into(),
            "id" | "session_id" => s.id.to_string().into(),
            "name" | "session_name" | "sess_id" => s.name.as_str().into(),
            "type" | "session_type" => s.session_type.as_str().into(),
            "status" => s.status().into(),
            "status_info" => s.status_info().into(),
            "image" => s.image.as_str().into(),
            "architecture" => "x86_64".into(),
            "scaling_group" => s.scaling_group.as_str().into(),
            "group_id" => s.group_id.to_string().into(),
            "group_name" => "default".into(),
            "domain_name" => "default".into(),
            "user_id" | "user_uuid" => shared.user_ids.get(&s.owner).map(|u| u.to_string()).into(),
            "user_email" => shared.email_of(&s.owner).into(),
            "access_key" => s.owner.as_str().into(),
            "created_at" => python_isoformat(s.created_at).into(),
            "terminated_at" => s.terminated_at().map(python_isoformat).into(),
            "starts_at" | "tag" => J::Null,
            "cluster_mode" => "single-node".into(),
            "cluster_size" => J::Int(1),
            "occupied_slots" => {
                if s.has_ports() {
                    J::from(r#"{"cpu": "1", "mem": "1073741824"}"#)
                } else {
                    J::from("{}")
                }
            }
            "mounts" => J::Arr(Vec::new()),
            "result" => "UNDEFINED".into(),
            "service_ports" => s
                .service_ports(shared.api_version)
                .map(|ports| J::Str(ports.dumps()))
                .unwrap_or(J::Null),
            _ => J::Null,
        };
        item.push(f.response_key(), value);
    }
    item
}

// ------------------------------------------------------------------------------------------
// Fuzzing entry

impl crate::server::Emulator {
    /// Fuzzing entry, not API: runs a GraphQL request through the parser, validation and
    /// execution exactly as `POST /admin/gql` does, for access key `AK1` of a fixed state
    /// (sessions `run` with an sshd, `wait` pending, and another user's `theirs`), and
    /// returns the reply body.
    #[doc(hidden)]
    pub fn fuzz_graphql(
        query: &str,
        variables: &serde_json::Map<String, Value>,
        operation_name: Option<&str>,
    ) -> String {
        static SHARED: std::sync::OnceLock<Option<Shared>> = std::sync::OnceLock::new();
        let shared = SHARED.get_or_init(|| Shared::new(&fixture_config(), false).ok());
        match shared {
            Some(shared) => execute(shared, "AK1", query, variables, operation_name)
                .formatted()
                .dumps(),
            None => String::new(),
        }
    }
}

/// The state the unit tests and the fuzz entry query: two keypairs, a RUNNING session with
/// sshd and a PENDING one for AK1, and a session of AK2's that AK1 must not see.
fn fixture_config() -> crate::config::Config {
    use crate::config::{Config, KeypairConfig, ServiceConfig, SessionConfig};
    let mut config = Config::default();
    config.keypairs.push(KeypairConfig::new("AK1", "s1"));
    config.keypairs.push(KeypairConfig::new("AK2", "s2"));
    config
        .sessions
        .push(SessionConfig::new("run").with_service(ServiceConfig::new(
            "sshd",
            "tcp",
            2200,
            "127.0.0.1:2222",
        )));
    config
        .sessions
        .push(SessionConfig::new("wait").with_status("PENDING"));
    let mut other = SessionConfig::new("theirs");
    other.access_key = Some("AK2".into());
    config.sessions.push(other);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "query($limit:Int!,$offset:Int!,$status:String){ compute_session_list(limit:$limit, offset:$offset, status:$status){ items { id name type status status_info image scaling_group group_id created_at service_ports } total_count } }";

    fn shared() -> Shared {
        Shared::new(&fixture_config(), false).unwrap()
    }

    fn vars(v: serde_json::Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn lists_own_sessions_with_json_string_ports() {
        let s = shared();
        let r = execute(
            &s,
            "AK1",
            LIST,
            &vars(serde_json::json!({"limit": 50, "offset": 0, "status": null})),
            None,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let text = r.formatted().dumps();
        let v: Value = serde_json::from_str(&text).unwrap();
        let list = &v["data"]["compute_session_list"];
        assert_eq!(list["total_count"], 2);
        let items = list["items"].as_array().unwrap();
        assert_eq!(items[0]["name"], "run");
        let ports: Value =
            serde_json::from_str(items[0]["service_ports"].as_str().unwrap()).unwrap();
        assert_eq!(ports[0]["name"], "sshd");
        assert_eq!(ports[0]["container_ports"][0], 2200);
        assert_eq!(items[1]["name"], "wait");
        assert!(items[1]["service_ports"].is_null());
        // Only the selected fields, in the selected order.
        let keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 10);
    }

    #[test]
    fn status_filter_and_paging() {
        let s = shared();
        let q = "{ compute_session_list(limit: 1, offset: 0, status: \"RUNNING,PENDING\") { total_count items { name } } }";
        let r = execute(&s, "AK1", q, &serde_json::Map::new(), None);
        let v: Value = serde_json::from_str(&r.formatted().dumps()).unwrap();
        assert_eq!(v["data"]["compute_session_list"]["total_count"], 2);
        assert_eq!(
            v["data"]["compute_session_list"]["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        let q = "{ compute_session_list(limit: 10, offset: 0, status: \"BOGUS\") { total_count } }";
        let r = execute(&s, "AK1", q, &serde_json::Map::new(), None);
        let v: Value = serde_json::from_str(&r.formatted().dumps()).unwrap();
        assert!(v["data"]["compute_session_list"].is_null());
        assert_eq!(v["errors"][0]["message"], "'BOGUS'");
        assert_eq!(v["errors"][0]["path"][0], "compute_session_list");
    }

    #[test]
    fn v4_shape_and_aliases() {
        let s = shared();
        let q = "query { sessions: compute_session_list(limit: 5, offset: 0) { items { sess_id status service_ports } } }";
        let r = execute(&s, "AK2", q, &serde_json::Map::new(), None);
        let v: Value = serde_json::from_str(&r.formatted().dumps()).unwrap();
        assert_eq!(v["data"]["sessions"]["items"][0]["sess_id"], "theirs");
        assert_eq!(v["data"]["sessions"]["items"][0]["service_ports"], "[]");
    }

    #[test]
    fn malformed_queries_are_errors_not_panics() {
        let s = shared();
        let empty = serde_json::Map::new();
        for q in [
            "",
            "{",
            "}",
            "{ compute_session_list }",
            "{ compute_session_list(limit: 1, offset: 0) }",
            "{ compute_session_list(limit: 1) { total_count } }",
            "{ compute_session_list(limit: 1, offset: 0, bogus: 1) { total_count } }",
            "{ compute_session_list(limit: 1, offset: 0) { items { nope } } }",
            "{ compute_session_list(limit: 1, offset: 0) { total_count { x } } }",
            "{ compute_session_list(limit: $l, offset: 0) { total_count } }",
            "query($l: Int!) { compute_session_list(limit: $l, offset: 0) { total_count } }",
            "{ compute_session_list(limit: \"x\", offset: 0) { total_count } }",
            "{ other }",
            "mutation { x }",
            "{ ...frag }",
            "\"unterminated",
            "{ a(b: \"\\u12\") }",
            "{ compute_session_list(limit: 1, offset: 0) @include(if: true) { total_count } }",
            &"{".repeat(500),
            &"[".repeat(500),
            "query A { __typename } query B { __typename }",
            "{ é }",
            "- 1e",
        ] {
            let r = execute(&s, "AK1", q, &empty, None);
            assert!(!r.errors.is_empty(), "no error for {q:?}");
        }
        let r = execute(
            &s,
            "AK1",
            "query A { __typename } query B { __typename }",
            &empty,
            Some("B"),
        );
        assert!(r.errors.is_empty());
    }

    #[test]
    fn syntax_error_locations() {
        let s = shared();
        let r = execute(
            &s,
            "AK1",
            "{\n  compute_session_list(limit: 1 offset: 0) {\n  }\n}",
            &serde_json::Map::new(),
            None,
        );
        assert_eq!(r.errors[0].location, Some((3, 3)));
        assert!(r.data.is_none());
    }
}

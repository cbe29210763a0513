//! The parser: tokens to operations (variables, fields, arguments, aliases), with a
//! depth limit.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
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
pub(super) struct VarDef {
    pub(super) name: String,
    pub(super) type_name: String,
    pub(super) non_null: bool,
    pub(super) default: Option<Val>,
    pub(super) pos: Pos,
}

#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) alias: Option<String>,
    pub(super) name: String,
    pub(super) args: Vec<(String, Val, Pos)>,
    pub(super) selections: Vec<Field>,
    pub(super) has_selection: bool,
    pub(super) pos: Pos,
}

impl Field {
    pub(super) fn response_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Operation {
    pub(super) kind: String,
    pub(super) name: Option<String>,
    pub(super) var_defs: Vec<VarDef>,
    pub(super) selections: Vec<Field>,
}

pub(super) struct Parser {
    pub(super) tokens: Vec<(Tok, Pos)>,
    pub(super) at: usize,
    pub(super) depth: usize,
}

/// Selection sets and values nest at most this deep (a guard against stack exhaustion).
pub(super) const MAX_DEPTH: usize = 64;

impl Parser {
    pub(super) fn peek(&self) -> &Tok {
        self.tokens.get(self.at).map_or(&Tok::Eof, |(t, _)| t)
    }

    pub(super) fn pos(&self) -> Pos {
        self.tokens
            .get(self.at)
            .or(self.tokens.last())
            .map_or(Pos { line: 1, column: 1 }, |(_, p)| *p)
    }

    pub(super) fn next(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        tok
    }

    pub(super) fn unexpected(&self, expected: &str) -> GqlError {
        GqlError::at(
            format!(
                "Syntax Error: Expected {expected}, found {}.",
                self.peek().describe()
            ),
            self.pos(),
        )
    }

    pub(super) fn expect_punct(&mut self, c: char) -> Result<(), GqlError> {
        if *self.peek() == Tok::Punct(c) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}'")))
        }
    }

    pub(super) fn eat_punct(&mut self, c: char) -> bool {
        if *self.peek() == Tok::Punct(c) {
            self.next();
            true
        } else {
            false
        }
    }

    pub(super) fn name(&mut self) -> Result<String, GqlError> {
        match self.peek() {
            Tok::Name(n) => {
                let n = n.clone();
                self.next();
                Ok(n)
            }
            _ => Err(self.unexpected("Name")),
        }
    }

    pub(super) fn enter(&mut self) -> Result<(), GqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GqlError::at(
                "Syntax Error: Document is too deeply nested.",
                self.pos(),
            ));
        }
        Ok(())
    }

    pub(super) fn document(&mut self) -> Result<Vec<Operation>, GqlError> {
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

    pub(super) fn var_defs(&mut self) -> Result<Vec<VarDef>, GqlError> {
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

    pub(super) fn type_ref(&mut self) -> Result<(String, bool), GqlError> {
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

    pub(super) fn selection_set(&mut self) -> Result<Vec<Field>, GqlError> {
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

    pub(super) fn field(&mut self) -> Result<Field, GqlError> {
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

    pub(super) fn value(&mut self, constant: bool) -> Result<Val, GqlError> {
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

pub(super) fn parse(source: &str) -> Result<Vec<Operation>, GqlError> {
    let tokens = lex(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    parser.document()
}

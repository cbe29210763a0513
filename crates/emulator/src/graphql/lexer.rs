//! The lexer: source text to tokens with their lines.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Eof,
}

impl Tok {
    pub(super) fn describe(&self) -> String {
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

pub(super) fn lex(source: &str) -> Result<Vec<(Tok, Pos)>, GqlError> {
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

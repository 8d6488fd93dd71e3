//! Splits query text into tokens, each with the 1-based column where it starts.

use std::fmt;

use super::{Ago, QueryError, TimeUnit, is_word_char, is_word_start};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A bare word: a field name (with a quoted key already folded in), a keyword, a shorthand
    /// name or value, a free-text word.
    Word(String),
    /// A quoted string ('…' or "…", a doubled quote stands for itself), or `…` in term position.
    Quoted(String),
    /// A number and the text it was written as.
    Num(f64, String),
    Ago(Ago),
    Cmp(CmpTok),
    LParen,
    RParen,
    Comma,
    Colon,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpTok {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpTok {
    fn text(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        }
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "'{w}'"),
            Tok::Quoted(s) => write!(f, "string '{s}'"),
            Tok::Num(_, raw) => write!(f, "number {raw}"),
            Tok::Ago(a) => write!(f, "time {a}"),
            Tok::Cmp(c) => write!(f, "'{}'", c.text()),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::Comma => f.write_str("','"),
            Tok::Colon => f.write_str("':'"),
            Tok::End => f.write_str("the end of the query"),
        }
    }
}

/// A token and the column (1-based, in characters) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spanned {
    pub tok: Tok,
    pub column: usize,
}

/// Tokenizes all of `src`; the last token is [`Tok::End`].
pub(super) fn tokenize(src: &str) -> Result<Vec<Spanned>, QueryError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let column = i + 1;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            ':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(tok) = single {
            out.push(Spanned { tok, column });
            i += 1;
            continue;
        }
        let tok = match c {
            '\'' | '"' | '`' => {
                let (text, next) = quoted(&chars, i)?;
                i = next;
                Tok::Quoted(text)
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (cmp, len) = match (c, next) {
                    ('=', Some('=')) => (CmpTok::Eq, 2),
                    ('=', _) => (CmpTok::Eq, 1),
                    ('!', Some('=')) => (CmpTok::Ne, 2),
                    ('<', Some('>')) => (CmpTok::Ne, 2),
                    ('<', Some('=')) => (CmpTok::Le, 2),
                    ('<', _) => (CmpTok::Lt, 1),
                    ('>', Some('=')) => (CmpTok::Ge, 2),
                    ('>', _) => (CmpTok::Gt, 1),
                    _ => return Err(QueryError::unexpected(column, "'!'", "'!='")),
                };
                i += len;
                Tok::Cmp(cmp)
            }
            c if c.is_ascii_digit()
                || (matches!(c, '-' | '+' | '.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == '.')) =>
            {
                let start = i;
                let mut end = i + 1;
                while end < chars.len()
                    && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '.' | '_'))
                    || (end < chars.len()
                        && matches!(chars[end], '-' | '+')
                        && matches!(chars[end - 1], 'e' | 'E'))
                {
                    end += 1;
                }
                let raw: String = chars[start..end].iter().collect();
                i = end;
                number(&raw, column)?
            }
            c if is_word_start(c) => {
                let mut end = i + 1;
                while end < chars.len() && is_word_char(chars[end]) {
                    end += 1;
                }
                let mut word: String = chars[i..end].iter().collect();
                // A quoted key after the dot: metrics.`my metric`, tags."mlflow.user".
                if word.ends_with('.') && matches!(chars.get(end), Some('`' | '"')) {
                    let (key, next) = quoted(&chars, end)?;
                    word.push_str(&key);
                    end = next;
                }
                i = end;
                Tok::Word(word)
            }
            other => {
                return Err(QueryError::unexpected(
                    column,
                    format!("'{other}'"),
                    "a field, a word, a value or an operator",
                ));
            }
        };
        out.push(Spanned { tok, column });
    }
    out.push(Spanned {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    Ok(out)
}

/// The text of the quoted string starting at `chars[start]` and the index after it.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let q = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(QueryError::invalid(
                    start + 1,
                    format!("unterminated {q} quote"),
                ));
            }
            Some(&c) if c == q => {
                if chars.get(i + 1) == Some(&q) {
                    text.push(q);
                    i += 2;
                } else {
                    return Ok((text, i + 1));
                }
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// A number (`0.9`, `-1e-3`), a relative time (`-7d`) or, for text that starts with a digit and
/// is neither (`50epochs`), a word.
fn number(raw: &str, column: usize) -> Result<Tok, QueryError> {
    if let Some(rest) = raw.strip_prefix('-')
        && let Some(unit) = rest.chars().last().and_then(TimeUnit::from_suffix)
        && let Ok(amount) = rest[..rest.len() - 1].parse::<u32>()
        && rest[..rest.len() - 1].bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(Tok::Ago(Ago { amount, unit }));
    }
    let numeric_text = raw
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match raw.parse::<f64>() {
        Ok(n) if numeric_text && n.is_finite() => Ok(Tok::Num(n, raw.to_owned())),
        _ if raw.starts_with(|c: char| c.is_ascii_digit()) && !numeric_text => {
            Ok(Tok::Word(raw.to_owned()))
        }
        _ => Err(QueryError::invalid(
            column,
            format!("'{raw}' is not a number"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens_of_a_mixed_query() {
        assert_eq!(
            toks("metrics.`my acc`>=0.9 and tags.\"mlflow.user\" != 'it''s' -7d (x, y):"),
            vec![
                Tok::Word("metrics.my acc".into()),
                Tok::Cmp(CmpTok::Ge),
                Tok::Num(0.9, "0.9".into()),
                Tok::Word("and".into()),
                Tok::Word("tags.mlflow.user".into()),
                Tok::Cmp(CmpTok::Ne),
                Tok::Quoted("it's".into()),
                Tok::Ago(Ago {
                    amount: 7,
                    unit: TimeUnit::Days
                }),
                Tok::LParen,
                Tok::Word("x".into()),
                Tok::Comma,
                Tok::Word("y".into()),
                Tok::RParen,
                Tok::Colon,
                Tok::End,
            ]
        );
        assert_eq!(toks("1e-5")[0], Tok::Num(1e-5, "1e-5".into()));
        assert_eq!(toks("50epochs")[0], Tok::Word("50epochs".into()));
        assert_eq!(toks("''")[0], Tok::Quoted(String::new()));
    }

    #[test]
    fn bad_tokens_say_where() {
        let err = |s: &str| tokenize(s).unwrap_err().to_string();
        assert_eq!(err("params.x = 'open"), "unterminated ' quote at column 12");
        assert_eq!(
            err("metrics.acc ~ 1"),
            "unexpected '~' at column 13, expected a field, a word, a value or an operator"
        );
        assert_eq!(
            err("x > -inf"),
            "unexpected '-' at column 5, expected a field, a word, a value or an operator"
        );
        assert_eq!(err("x > 1.2.3"), "'1.2.3' is not a number at column 5");
        assert_eq!(err("x > 1e999"), "'1e999' is not a number at column 5");
    }
}

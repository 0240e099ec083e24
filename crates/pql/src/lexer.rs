//! Lexer: turns pql/text into tokens carrying their byte span.
//!
//! Words are not classified here: PQL has many contextual words (`today`, `before`, `on`,
//! `WHAT`...) that are ordinary field names elsewhere, so the parser decides what a word means.
//! Spans are byte offsets into the source; [`crate::error::ParseError`] turns them into
//! line:column for messages.

use crate::error::ParseError;

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A word: identifier, keyword or function name.
    Ident(String),
    /// A non-negative integer literal (the parser folds a leading `-`).
    Int(i64),
    /// A non-negative decimal literal.
    Float(f64),
    /// A double-quoted string literal, escapes resolved.
    Str(String),
    /// `$N`, a positional parameter reference.
    Param(u32),
    /// `^`, the filter up-operator.
    Caret,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `:`
    Colon,
    /// `=>` of the lambda form.
    Arrow,
    /// `=` (or `==`)
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `%`
    Percent,
    /// `!`, the prefix negation.
    Bang,
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(w) => format!("`{w}`"),
            Tok::Int(i) => format!("number `{i}`"),
            Tok::Float(f) => format!("number `{f}`"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Param(p) => format!("`${p}`"),
            Tok::Eof => "end of input".to_owned(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Caret => "^",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Colon => ":",
            Tok::Arrow => "=>",
            Tok::Eq => "=",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Bang => "!",
            _ => "",
        }
    }
}

/// A token and the byte range it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just after it.
    pub end: usize,
}

/// Tokenizes the whole source; the last token is always [`Tok::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(&b) = bytes.get(pos) {
        let start = pos;
        if b.is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let single = |t: Tok| Some((t, 1));
        let two = |next: u8, yes: Tok, no: Tok| {
            if bytes.get(start + 1) == Some(&next) {
                Some((yes, 2))
            } else {
                Some((no, 1))
            }
        };
        let simple = match b {
            b'(' => single(Tok::LParen),
            b')' => single(Tok::RParen),
            b'[' => single(Tok::LBracket),
            b']' => single(Tok::RBracket),
            b'{' => single(Tok::LBrace),
            b'}' => single(Tok::RBrace),
            b',' => single(Tok::Comma),
            b'.' if !bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) => single(Tok::Dot),
            b':' => single(Tok::Colon),
            b'^' => single(Tok::Caret),
            b'+' => single(Tok::Plus),
            b'-' => single(Tok::Minus),
            b'*' => single(Tok::Star),
            b'/' => single(Tok::Slash),
            b'%' => single(Tok::Percent),
            b'=' => match bytes.get(pos + 1) {
                Some(b'>') => Some((Tok::Arrow, 2)),
                // `==` is accepted as a synonym of `=`: people write it, and it is unambiguous.
                Some(b'=') => Some((Tok::Eq, 2)),
                _ => Some((Tok::Eq, 1)),
            },
            b'!' => two(b'=', Tok::Ne, Tok::Bang),
            b'<' => two(b'=', Tok::Le, Tok::Lt),
            b'>' => two(b'=', Tok::Ge, Tok::Gt),
            _ => None,
        };
        if let Some((tok, len)) = simple {
            pos += len;
            out.push(Token {
                tok,
                start,
                end: pos,
            });
            continue;
        }
        let (tok, end) = if b == b'"' {
            lex_string(src, start)?
        } else if b.is_ascii_digit() || b == b'.' {
            lex_number(src, start)?
        } else if b == b'$' {
            let digits_end = scan_while(bytes, start + 1, |c| c.is_ascii_digit());
            let text = src.get(start + 1..digits_end).unwrap_or("");
            let n: u32 =
                text.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ParseError::at(src, start, "a parameter number after `$` (`$1`)")
                })?;
            (Tok::Param(n), digits_end)
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let end = scan_while(bytes, start, |c| c.is_ascii_alphanumeric() || c == b'_');
            let word = src.get(start..end).unwrap_or("").to_owned();
            (Tok::Ident(word), end)
        } else if b == b'`' {
            // Backquoted names allow field names that clash with keywords or hold odd characters.
            let close = src
                .get(start + 1..)
                .and_then(|rest| rest.find('`'))
                .ok_or_else(|| ParseError::at(src, start, "a closing backquote"))?;
            let word = src
                .get(start + 1..start + 1 + close)
                .unwrap_or("")
                .to_owned();
            (Tok::Ident(word), start + close + 2)
        } else {
            return Err(ParseError::at(src, start, "a token"));
        };
        pos = end;
        out.push(Token { tok, start, end });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(out)
}

fn scan_while(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    let mut pos = from;
    while bytes.get(pos).is_some_and(|c| pred(*c)) {
        pos += 1;
    }
    pos
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let bytes = src.as_bytes();
    let mut end = scan_while(bytes, start, |c| c.is_ascii_digit());
    let mut is_float = false;
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        is_float = true;
        end = scan_while(bytes, end + 1, |c| c.is_ascii_digit());
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(bytes.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        if bytes.get(exp).is_some_and(u8::is_ascii_digit) {
            is_float = true;
            end = scan_while(bytes, exp, |c| c.is_ascii_digit());
        }
    }
    let text = src.get(start..end).unwrap_or("");
    if is_float {
        let f: f64 = text
            .parse()
            .map_err(|_| ParseError::at(src, start, "a decimal number"))?;
        if !f.is_finite() {
            return Err(ParseError::at(src, start, "a finite decimal number"));
        }
        Ok((Tok::Float(f), end))
    } else {
        let i: i64 = text
            .parse()
            .map_err(|_| ParseError::at(src, start, "an integer between -2^63 and 2^63-1"))?;
        Ok((Tok::Int(i), end))
    }
}

fn lex_string(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let mut value = String::new();
    let mut chars = src.get(start + 1..).unwrap_or("").char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(value), start + 1 + i + 1)),
            '\\' => match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                // Any other escape is kept verbatim: the docs write regexes such as
                // "@(\w+)" with single backslashes and mean the regex escape.
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            },
            other => value.push(other),
        }
    }
    Err(ParseError::at(src, start, "a closing `\"` for this string"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_words() {
        assert_eq!(
            toks("a.b >= 3 and $1 != \"x\" => ^^"),
            vec![
                Tok::Ident("a".into()),
                Tok::Dot,
                Tok::Ident("b".into()),
                Tok::Ge,
                Tok::Int(3),
                Tok::Ident("and".into()),
                Tok::Param(1),
                Tok::Ne,
                Tok::Str("x".into()),
                Tok::Arrow,
                Tok::Caret,
                Tok::Caret,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers_and_strings() {
        assert_eq!(toks("2.5")[0], Tok::Float(2.5));
        assert_eq!(toks("0.0")[0], Tok::Float(0.0));
        assert_eq!(toks(r#""@(\w+)""#)[0], Tok::Str(r"@(\w+)".into()));
        assert_eq!(toks(r#""a\"b\\c""#)[0], Tok::Str("a\"b\\c".into()));
    }

    #[test]
    fn unterminated_string_points_at_the_quote() {
        let err = tokenize("a = \"abc").unwrap_err();
        assert_eq!((err.line, err.column), (1, 5));
    }

    #[test]
    fn integer_overflow_is_an_error() {
        assert!(tokenize("99999999999999999999").is_err());
    }
}

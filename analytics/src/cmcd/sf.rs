//! A zero-allocation scanner for RFC 8941 dictionaries (the syntax of every CMCD and CMSD
//! value): it validates the whole input and hands each member to a callback as borrowed slices,
//! keeping only what CMCD needs (an inner list's first item and its length; no parameters).
//!
//! Accepts exactly what RFC 8941 §4.2 accepts (cross-checked against the `sfv` crate in
//! `Version::Rfc8941` mode by the tests of [`super`]); RFC 9651 dates (`@`) and display strings
//! (`%"`) are rejected, as CMCD is defined on RFC 8941.

/// A syntax error: the byte offset in the input and what was expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: usize,
    pub what: &'static str,
}

/// An RFC 8941 bare item, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bare<'a> {
    Integer(i64),
    Decimal(f64),
    /// The raw bytes between the quotes; `escaped` says whether `\"` or `\\` occur in them.
    String {
        raw: &'a [u8],
        escaped: bool,
    },
    Token(&'a [u8]),
    /// The base64 text between the colons (validated, not decoded).
    Bytes(&'a [u8]),
    Boolean(bool),
}

/// A dictionary member's value (parameters are validated and dropped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Item(Bare<'a>),
    /// An inner list: its first item (if any) and how many items it has.
    List {
        first: Option<Bare<'a>>,
        len: usize,
    },
}

impl<'a> Value<'a> {
    /// The item itself, or an inner list's first item (CMCD v2 sends `br=(3000;v 164;a)` where
    /// v1 sent `br=3000`).
    pub fn first(&self) -> Option<Bare<'a>> {
        match *self {
            Value::Item(b) => Some(b),
            Value::List { first, .. } => first,
        }
    }
}

/// Unescapes an RFC 8941 string's raw bytes (`\"` → `"`, `\\` → `\`). The scanner has already
/// checked that they are printable ASCII with valid escapes.
pub fn unescape(raw: &[u8], escaped: bool) -> String {
    if !escaped {
        // Printable ASCII (checked by the scanner), so always valid UTF-8.
        return std::str::from_utf8(raw).map_or_else(|_| String::from_utf8_lossy(raw).into_owned(), str::to_owned);
    }
    let mut out = String::with_capacity(raw.len());
    let mut iter = raw.iter();
    while let Some(&c) = iter.next() {
        if c == b'\\' {
            if let Some(&n) = iter.next() {
                out.push(n as char);
            }
        } else {
            out.push(c as char);
        }
    }
    out
}

/// The unescaped length of a string's raw bytes (each escape is two bytes for one character).
pub fn unescaped_len(raw: &[u8], escaped: bool) -> usize {
    if !escaped {
        return raw.len();
    }
    let (mut i, mut escapes) = (0, 0);
    while i < raw.len() {
        if raw[i] == b'\\' {
            escapes += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    raw.len() - escapes
}

/// Parses `input` as an RFC 8941 dictionary, calling `member(key, value)` for each member in
/// order (a repeated key is reported again; the last one wins in RFC 8941 terms).
pub fn parse_dictionary<'a>(input: &'a [u8], mut member: impl FnMut(&'a [u8], Value<'a>)) -> Result<(), SyntaxError> {
    let mut s = Scanner { b: input, i: 0 };
    s.skip_sp();
    if s.at_end() {
        return Ok(());
    }
    loop {
        let key = s.key()?;
        let value = if s.peek() == Some(b'=') {
            s.i += 1;
            if s.peek() == Some(b'(') {
                s.inner_list()?
            } else {
                let b = s.bare_item()?;
                s.parameters()?;
                Value::Item(b)
            }
        } else {
            s.parameters()?;
            Value::Item(Bare::Boolean(true))
        };
        member(key, value);
        s.skip_ows();
        if s.at_end() {
            return Ok(());
        }
        if s.peek() != Some(b',') {
            return Err(s.err("',' after a dictionary member"));
        }
        s.i += 1;
        s.skip_ows();
        if s.at_end() {
            return Err(s.err("a member after ','"));
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

const KEY_START: u8 = 1;
const KEY_CHAR: u8 = 2;
const TOKEN_CHAR: u8 = 4;
const BASE64_CHAR: u8 = 8;

/// Character classes of RFC 8941 §3.1.2 (keys), §3.3.4 (tokens) and §3.3.5 (base64), one
/// table lookup per byte instead of a chain of comparisons.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let lower = b.is_ascii_lowercase();
        let digit = b.is_ascii_digit();
        let alnum = b.is_ascii_alphanumeric();
        let mut f = 0;
        if lower || b == b'*' {
            f |= KEY_START;
        }
        if lower || digit || matches!(b, b'_' | b'-' | b'.' | b'*') {
            f |= KEY_CHAR;
        }
        if alnum
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
                    | b':'
                    | b'/'
            )
        {
            f |= TOKEN_CHAR;
        }
        if alnum || b == b'+' || b == b'/' {
            f |= BASE64_CHAR;
        }
        t[c] = f;
        c += 1;
    }
    t
};

#[inline]
fn is_key_start(c: u8) -> bool {
    CLASS[c as usize] & KEY_START != 0
}

#[inline]
fn is_key_char(c: u8) -> bool {
    CLASS[c as usize] & KEY_CHAR != 0
}

#[inline]
fn is_token_char(c: u8) -> bool {
    CLASS[c as usize] & TOKEN_CHAR != 0
}

#[inline]
fn is_base64_char(c: u8) -> bool {
    CLASS[c as usize] & BASE64_CHAR != 0
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    #[cold]
    #[inline(never)]
    fn err(&self, what: &'static str) -> SyntaxError {
        SyntaxError { at: self.i, what }
    }

    #[inline]
    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    #[inline]
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn key(&mut self) -> Result<&'a [u8], SyntaxError> {
        let start = self.i;
        match self.peek() {
            Some(c) if is_key_start(c) => self.i += 1,
            _ => return Err(self.err("a key (lowercase letter or '*')")),
        }
        while let Some(c) = self.peek() {
            if !is_key_char(c) {
                break;
            }
            self.i += 1;
        }
        Ok(&self.b[start..self.i])
    }

    #[inline(always)]
    fn parameters(&mut self) -> Result<(), SyntaxError> {
        while self.peek() == Some(b';') {
            self.i += 1;
            self.skip_sp();
            self.key()?;
            if self.peek() == Some(b'=') {
                self.i += 1;
                self.bare_item()?;
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn inner_list(&mut self) -> Result<Value<'a>, SyntaxError> {
        self.i += 1; // '('
        let mut first = None;
        let mut len = 0;
        while !self.at_end() {
            self.skip_sp();
            if self.peek() == Some(b')') {
                self.i += 1;
                self.parameters()?;
                return Ok(Value::List { first, len });
            }
            let item = self.bare_item()?;
            self.parameters()?;
            if len == 0 {
                first = Some(item);
            }
            len += 1;
            match self.peek() {
                Some(b' ' | b')') | None => {}
                Some(_) => return Err(self.err("' ' or ')' in an inner list")),
            }
        }
        Err(self.err("')' closing an inner list"))
    }

    #[inline(always)]
    fn bare_item(&mut self) -> Result<Bare<'a>, SyntaxError> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string(),
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => {
                let start = self.i;
                self.i += 1;
                while let Some(c) = self.peek() {
                    if !is_token_char(c) {
                        break;
                    }
                    self.i += 1;
                }
                Ok(Bare::Token(&self.b[start..self.i]))
            }
            Some(b':') => self.byte_sequence(),
            Some(b'?') => {
                self.i += 1;
                match self.peek() {
                    Some(b'0') => {
                        self.i += 1;
                        Ok(Bare::Boolean(false))
                    }
                    Some(b'1') => {
                        self.i += 1;
                        Ok(Bare::Boolean(true))
                    }
                    _ => Err(self.err("'0' or '1' after '?'")),
                }
            }
            _ => Err(self.err("an item")),
        }
    }

    #[inline(always)]
    fn number(&mut self) -> Result<Bare<'a>, SyntaxError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut magnitude: i64 = match self.peek() {
            Some(c @ b'0'..=b'9') => i64::from(c - b'0'),
            _ => return Err(self.err("a digit")),
        };
        self.i += 1;
        let mut digits = 1;
        loop {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    digits += 1;
                    if digits > 15 {
                        return Err(self.err("at most 15 digits in an integer"));
                    }
                    magnitude = magnitude * 10 + i64::from(c - b'0');
                    self.i += 1;
                }
                Some(b'.') => {
                    if digits > 12 {
                        return Err(self.err("at most 12 digits before a decimal point"));
                    }
                    self.i += 1;
                    break;
                }
                _ => {
                    return Ok(Bare::Integer(if negative { -magnitude } else { magnitude }));
                }
            }
        }
        // Fraction: 1 to 3 digits, kept as thousandths so that the value is exact.
        let mut thousandths = magnitude * 1000;
        let mut scale = 100;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if scale == 0 {
                return Err(self.err("at most 3 digits after a decimal point"));
            }
            thousandths += i64::from(c - b'0') * scale;
            scale /= 10;
            self.i += 1;
        }
        if scale == 100 {
            self.i -= 1;
            return Err(self.err("a digit after a decimal point"));
        }
        let v = thousandths as f64 / 1000.0;
        Ok(Bare::Decimal(if negative { -v } else { v }))
    }

    #[inline(always)]
    fn string(&mut self) -> Result<Bare<'a>, SyntaxError> {
        self.i += 1; // '"'
        let start = self.i;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    let raw = &self.b[start..self.i];
                    self.i += 1;
                    return Ok(Bare::String { raw, escaped });
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\') => {
                            escaped = true;
                            self.i += 1;
                        }
                        None => return Err(self.err("an escaped character after '\\'")),
                        Some(_) => return Err(self.err("'\"' or '\\' after '\\'")),
                    }
                }
                0x20..=0x7e => self.i += 1,
                _ => return Err(self.err("a printable ASCII character in a string")),
            }
        }
        Err(self.err("'\"' closing a string"))
    }

    /// `:base64:`, with the tolerance of the `sfv` crate (and RFC 8941 §4.2.7's advice): padding
    /// optional, trailing bits allowed.
    fn byte_sequence(&mut self) -> Result<Bare<'a>, SyntaxError> {
        self.i += 1; // ':'
        let start = self.i;
        loop {
            match self.peek() {
                Some(b':') => break,
                Some(c) if is_base64_char(c) || c == b'=' => self.i += 1,
                Some(_) => return Err(self.err("a base64 character in a byte sequence")),
                None => return Err(self.err("':' closing a byte sequence")),
            }
        }
        let text = &self.b[start..self.i];
        let data_len = text.iter().position(|&c| c == b'=').unwrap_or(text.len());
        let pad = text.len() - data_len;
        let valid = text[data_len..].iter().all(|&c| c == b'=')
            && data_len % 4 != 1
            && (pad == 0 || (data_len % 4 != 0 && data_len % 4 + pad <= 4));
        if !valid {
            return Err(self.err("valid base64 in a byte sequence"));
        }
        self.i += 1;
        Ok(Bare::Bytes(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &str) -> Result<Vec<(String, Value<'_>)>, SyntaxError> {
        let mut out = Vec::new();
        parse_dictionary(s.as_bytes(), |k, v| out.push((String::from_utf8(k.to_vec()).unwrap(), v)))?;
        Ok(out)
    }

    #[test]
    fn items_of_every_type() {
        let m = members(r#"a=1,b=-2.5,c="x\"y",d=tok/x:1,e=:aGk=:,f=?0,g,h;p=1,i=(1 2;a "s")"#).unwrap();
        assert_eq!(m[0].1, Value::Item(Bare::Integer(1)));
        assert_eq!(m[1].1, Value::Item(Bare::Decimal(-2.5)));
        assert_eq!(m[2].1, Value::Item(Bare::String { raw: br#"x\"y"#, escaped: true }));
        assert_eq!(m[3].1, Value::Item(Bare::Token(b"tok/x:1")));
        assert_eq!(m[4].1, Value::Item(Bare::Bytes(b"aGk=")));
        assert_eq!(m[5].1, Value::Item(Bare::Boolean(false)));
        assert_eq!(m[6].1, Value::Item(Bare::Boolean(true)));
        assert_eq!(m[7].1, Value::Item(Bare::Boolean(true)));
        assert_eq!(m[8].1, Value::List { first: Some(Bare::Integer(1)), len: 3 });
    }

    #[test]
    fn character_classes_match_rfc_8941() {
        for c in 0..=255u8 {
            let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
            assert_eq!(is_key_start(c), c.is_ascii_lowercase() || c == b'*', "{c}");
            assert_eq!(is_key_char(c), c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c), "{c}");
            assert_eq!(is_token_char(c), tchar || c == b':' || c == b'/', "{c}");
            assert_eq!(is_base64_char(c), c.is_ascii_alphanumeric() || c == b'+' || c == b'/', "{c}");
        }
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape(br#"a\"b\\c"#, true), r#"a"b\c"#);
        assert_eq!(unescaped_len(br#"a\"b\\c"#, true), 5);
        assert_eq!(unescaped_len(br#"\\\\"#, true), 2);
        assert_eq!(unescaped_len(b"abc", false), 3);
    }

    #[test]
    fn errors_point_at_the_byte() {
        assert_eq!(members("a=1,,b").unwrap_err().at, 4);
        assert_eq!(members("a=1.").unwrap_err().at, 3);
        assert_eq!(members("a=\"x").unwrap_err().at, 4);
        assert_eq!(members("A=1").unwrap_err().at, 0);
    }
}

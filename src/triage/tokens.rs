//! Tokeniser for changed lines: identifiers, whole numbers, operators, punctuation.
//!
//! Hand-written and allocation-free. Whitespace only separates tokens (so re-indentation does
//! not change them). Operators are kept (`=`, `===`, `=>`, `!=`, `&&` ... each one token, so
//! `a = b` and `a == b` differ) and numbers are never split (`1.0.1`, `0x7f`, `3_000` and
//! `1e10` are single tokens), unlike tokenisers that drop symbols.

/// Characters that combine into operator tokens.
fn is_op(c: char) -> bool {
    matches!(
        c,
        '=' | '!' | '<' | '>' | '+' | '-' | '*' | '/' | '%' | '&' | '|' | '^' | '~' | '?' | ':'
    )
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Calls `f` with every token of `line`, in order.
pub fn for_each_token<'a>(line: &'a str, mut f: impl FnMut(&'a str)) {
    let mut it = line.char_indices().peekable();
    while let Some((start, c)) = it.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut end = start + c.len_utf8();
        if is_ident_start(c) {
            while let Some(&(i, d)) = it.peek() {
                if !is_ident_continue(d) {
                    break;
                }
                end = i + d.len_utf8();
                it.next();
            }
        } else if c.is_ascii_digit() {
            // A number runs over digits, letters (hex, suffixes, exponents), `_` and `.` when a
            // digit follows it, so versions and decimals stay whole.
            let mut prev = c;
            while let Some(&(i, d)) = it.peek() {
                let ok = d.is_alphanumeric()
                    || d == '_'
                    || d == '.'
                    || ((d == '-' || d == '+')
                        && (prev == 'e' || prev == 'E')
                        && !line[start..i].starts_with("0x"));
                if !ok {
                    break;
                }
                if d == '.' {
                    // Only continue over `.` when a digit follows (`1.5` yes, `1.toString` no).
                    let next = line[i + 1..].chars().next();
                    if !next.is_some_and(|n| n.is_ascii_digit()) {
                        break;
                    }
                }
                prev = d;
                end = i + d.len_utf8();
                it.next();
            }
        } else if is_op(c) {
            while let Some(&(i, d)) = it.peek() {
                // Comment openers stay apart from a preceding operator (`=//`) only loosely; a run
                // of at most 3 operator characters forms one token.
                if !is_op(d) || end - start >= 3 {
                    break;
                }
                end = i + d.len_utf8();
                it.next();
            }
        }
        f(&line[start..end]);
    }
}

/// Tokens of `line` as string slices (tests and evidence).
pub fn tokens(line: &str) -> Vec<&str> {
    let mut v = Vec::new();
    for_each_token(line, |t| v.push(t));
    v
}

/// Whitespace-normalised form of a line: tokens joined by single spaces.
pub fn normalise_line(line: &str, out: &mut String) {
    out.clear();
    for_each_token(line, |t| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    });
}

/// Truncates `s` to at most `max` bytes on a char boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_operators_and_numbers() {
        assert_eq!(tokens("x = 1.0.1;"), vec!["x", "=", "1.0.1", ";"]);
        assert_eq!(
            tokens("a===b && c!=d"),
            vec!["a", "===", "b", "&&", "c", "!=", "d"]
        );
        assert_eq!(
            tokens("f(0x7f, 3_000, 1e-5)"),
            vec!["f", "(", "0x7f", ",", "3_000", ",", "1e-5", ")"]
        );
        assert_eq!(
            tokens("const f = () => 42"),
            vec!["const", "f", "=", "(", ")", "=>", "42"]
        );
        assert_eq!(tokens("1.toString()"), vec!["1", ".", "toString", "(", ")"]);
        assert_eq!(tokens("  $el.name_2  "), vec!["$el", ".", "name_2"]);
        assert_eq!(tokens("ünïcödé = 'x'"), vec!["ünïcödé", "=", "'", "x", "'"]);
    }

    #[test]
    fn normalises_whitespace() {
        let mut a = String::new();
        let mut b = String::new();
        normalise_line("  if (a==b)  {", &mut a);
        normalise_line("if ( a == b ) {", &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
    }

    proptest! {
        #[test]
        fn tokens_cover_all_non_space(s in "\\PC{0,200}") {
            let joined: String = tokens(&s).concat();
            let expect: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            prop_assert_eq!(joined, expect);
        }
    }
}

//! Lays out ts-rs' one-line declarations for people: one field per line, doc comments indented
//! with their field, long unions one arm per line. Only whitespace changes, so what TypeScript
//! reads is exactly what ts-rs generated.

/// Unions longer than this go one arm per line.
const WIDTH: usize = 100;
const INDENT: &str = "  ";

/// `docs` (ts-rs' JSDoc, ending in a newline) and `type X = …;` as an exported declaration.
pub(crate) fn declaration(docs: Option<&str>, decl: &str) -> String {
    let mut out = docs.unwrap_or("").to_owned();
    let body = decl.trim().trim_end_matches(';');
    let Some((head, ty)) = body.split_once(" = ") else {
        out.push_str("export ");
        out.push_str(decl);
        return out;
    };
    let arms = split_top(ty.trim(), b'|');
    if arms.len() > 1 && "export ".len() + body.len() + 1 > WIDTH {
        out.push_str(&format!("export {head} ="));
        for arm in arms {
            out.push_str(&format!("\n{INDENT}| {}", layout(arm, 1)));
        }
    } else {
        out.push_str(&format!("export {head} = {}", layout(ty.trim(), 0)));
    }
    out.push(';');
    out
}

/// A type with each object type that ts-rs wrote for a struct (the ones ending in `, }`) laid
/// out one field per line; maps (`{ [key in string]: T }`) and tags (`{ "kind": "line" }`) stay
/// on one line.
fn layout(ty: &str, depth: usize) -> String {
    let b = ty.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                let close = matching_brace(b, i);
                let inner = &ty[i + 1..close];
                if inner.trim_end().ends_with(',') {
                    out.push_str("{\n");
                    for field in split_top(inner, b',') {
                        push_field(&mut out, field, depth + 1);
                    }
                    out.push_str(&INDENT.repeat(depth));
                    out.push('}');
                } else {
                    out.push_str(&ty[i..=close]);
                }
                i = close + 1;
            }
            _ => {
                let end = skip_literal(b, i).unwrap_or(i + 1);
                out.push_str(&ty[i..end]);
                i = end;
            }
        }
    }
    out
}

/// One field on its own line(s), after its doc comment.
fn push_field(out: &mut String, field: &str, depth: usize) {
    let indent = INDENT.repeat(depth);
    let mut rest = field;
    if rest.starts_with("/*")
        && let Some(end) = rest.find("*/")
    {
        for line in rest[..end + 2].lines() {
            let line = line.trim();
            let pad = if line.starts_with('*') { " " } else { "" };
            out.push_str(&format!("{indent}{pad}{line}\n"));
        }
        rest = rest[end + 2..].trim();
    }
    out.push_str(&format!("{indent}{},\n", layout(rest, depth)));
}

/// The parts of `s` between the `sep`s outside brackets, strings and comments, trimmed, empty
/// ones (after a trailing comma) dropped.
fn split_top(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let (mut parts, mut depth, mut start, mut i) = (Vec::new(), 0usize, 0, 0);
    while i < b.len() {
        if let Some(end) = skip_literal(b, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'{' | b'[' | b'(' | b'<' => depth += 1,
            b'}' | b']' | b')' | b'>' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(s[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The index of the `}` closing the `{` at `open`.
fn matching_brace(b: &[u8], open: usize) -> usize {
    let (mut depth, mut i) = (0usize, open);
    while i < b.len() {
        if let Some(end) = skip_literal(b, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len() - 1
}

/// Where the string literal or comment starting at `i` ends (exclusive), if one starts there.
fn skip_literal(b: &[u8], i: usize) -> Option<usize> {
    if b[i] == b'"' {
        let mut j = i + 1;
        while j < b.len() && b[j] != b'"' {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        return Some((j + 1).min(b.len()));
    }
    if b[i..].starts_with(b"/*") {
        let end = b[i + 2..]
            .windows(2)
            .position(|w| w == b"*/")
            .map_or(b.len(), |p| i + 2 + p + 2);
        return Some(end);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_go_one_field_per_line_with_their_docs() {
        let decl = "type A = { x: number, \n/**\n * The { y }.\n */\ny: { [key in string]: B }, z: { \"kind\": \"c\" } & C, };";
        assert_eq!(
            declaration(Some("/**\n * An A.\n */\n"), decl),
            "/**\n * An A.\n */\nexport type A = {\n  x: number,\n  /**\n   * The { y }.\n   */\n  y: { [key in string]: B },\n  z: { \"kind\": \"c\" } & C,\n};"
        );
    }

    #[test]
    fn long_unions_go_one_arm_per_line_and_short_ones_stay() {
        assert_eq!(
            declaration(None, r#"type S = "a" | "b";"#),
            r#"export type S = "a" | "b";"#
        );
        let long = format!(
            r#"type L = "{}" | {{ "k": "x|y" }} & {{ a: number, }};"#,
            "a".repeat(90)
        );
        assert_eq!(
            declaration(None, &long),
            format!(
                "export type L =\n  | \"{}\"\n  | {{ \"k\": \"x|y\" }} & {{\n    a: number,\n  }};",
                "a".repeat(90)
            )
        );
    }
}

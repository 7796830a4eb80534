//! Where a condition's pieces are written: the top-level `&&` conjuncts of an expression with
//! their source text, and byte offsets inside a YAML scalar mapped to file positions.

use cel::common::ast::{CallExpr, Expr as Ast, IdedExpr, SourceInfo};

use crate::node::Pos;

/// The top-level conjuncts of `ast` (`a && (b && c)` gives `a`, `b`, `c`), each with its text.
pub(crate) fn conjuncts<'e>(
    ast: &'e IdedExpr,
    info: &SourceInfo,
    source: &str,
) -> Vec<(&'e IdedExpr, String)> {
    let mut parts = Vec::new();
    let mut operators = Vec::new();
    flatten(ast, &mut parts, &mut operators, info);
    if parts.len() == 1 {
        return vec![(ast, tidy(source))];
    }
    // The `&&` operators sit between the conjuncts in source order: cut the text at them.
    operators.sort_unstable();
    let mut texts = Vec::new();
    let mut start = 0;
    for op in operators {
        texts.push(tidy(source.get(start..op).unwrap_or("")));
        start = op + 2;
    }
    texts.push(tidy(source.get(start..).unwrap_or("")));
    if texts.len() != parts.len() {
        // Offsets missing: fall back to the whole text for every part.
        return parts.into_iter().map(|p| (p, tidy(source))).collect();
    }
    // `parts` is in tree order, which for `&&` chains is source order too.
    parts.into_iter().zip(texts).collect()
}

fn flatten<'e>(
    e: &'e IdedExpr,
    parts: &mut Vec<&'e IdedExpr>,
    operators: &mut Vec<usize>,
    info: &SourceInfo,
) {
    if let Ast::Call(CallExpr {
        func_name,
        target: None,
        args,
    }) = &e.expr
        && func_name == "_&&_"
        && args.len() == 2
        && let Some((start, _)) = info.offset_for(e.id)
    {
        operators.push(usize::try_from(start).unwrap_or(0));
        flatten(&args[0], parts, operators, info);
        flatten(&args[1], parts, operators, info);
        return;
    }
    parts.push(e);
}

/// Trims whitespace and parentheses left unbalanced by cutting at `&&`, and folds the text onto
/// one line.
fn tidy(text: &str) -> String {
    let mut t = text.trim();
    loop {
        let open = t.matches('(').count();
        let close = t.matches(')').count();
        if open > close && t.starts_with('(') {
            t = t[1..].trim();
        } else if close > open && t.ends_with(')') {
            t = t[..t.len() - 1].trim();
        } else {
            break;
        }
    }
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The file position of byte `offset` of `decoded`, a YAML scalar whose node starts at `node`
/// in `file`: the decoded characters are found again, in order, in the raw text, skipping what
/// YAML adds (quotes, escapes, indentation, folded line breaks).
pub(crate) fn locate(file: &str, node: Pos, decoded: &str, offset: usize) -> Pos {
    let Some(mut raw) = byte_index(file, node) else {
        return node;
    };
    let raw_bytes = file.len();
    for (i, c) in decoded.char_indices() {
        // Find this character in the raw text; a whitespace character matches any whitespace.
        let mut scanned = 0;
        let found = loop {
            let Some(rc) = file.get(raw..).and_then(|r| r.chars().next()) else {
                break None;
            };
            if rc == c || (c.is_whitespace() && rc.is_whitespace()) {
                break Some(rc);
            }
            raw += rc.len_utf8();
            scanned += 1;
            // Escapes and indentation add a few characters; more means the texts diverged.
            if scanned > 256 || raw >= raw_bytes {
                break None;
            }
        };
        let Some(rc) = found else {
            return node;
        };
        if i >= offset {
            return position(file, raw);
        }
        raw += rc.len_utf8();
    }
    position(file, raw.min(raw_bytes))
}

/// The byte index of a 1-based line and character column.
fn byte_index(text: &str, pos: Pos) -> Option<usize> {
    let mut start = 0;
    for _ in 1..pos.line {
        start += text.get(start..)?.find('\n')? + 1;
    }
    let line = text.get(start..)?;
    let col = line
        .char_indices()
        .nth(pos.column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    Some(start + col)
}

fn position(text: &str, index: usize) -> Pos {
    let before = text.get(..index).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Pos { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn plain_quoted_and_block_scalars_map_back() {
        let file = "a:\n  condition: signIn.ipAddress == 'x' && bad\n";
        let decoded = "signIn.ipAddress == 'x' && bad";
        assert_eq!(locate(file, pos(2, 14), decoded, 27), pos(2, 41));

        let file = "condition: \"a && \\\"q\\\" == zz\"\n";
        let decoded = "a && \"q\" == zz";
        assert_eq!(locate(file, pos(1, 12), decoded, 12), pos(1, 27));

        let file = "x:\n  condition: |\n    a &&\n      zz\n";
        let decoded = "a &&\n  zz\n";
        assert_eq!(locate(file, pos(2, 14), decoded, 7), pos(4, 7));

        let file = "condition: >-\n  a &&\n  zz\n";
        let decoded = "a && zz";
        assert_eq!(locate(file, pos(1, 12), decoded, 5), pos(3, 3));
    }

    #[test]
    fn tidy_balances_parentheses_left_by_cutting() {
        assert_eq!(tidy(" (a "), "a");
        assert_eq!(tidy(" b) "), "b");
        assert_eq!(tidy("f(x)"), "f(x)");
        assert_eq!(tidy("a\n   || b"), "a || b");
    }
}

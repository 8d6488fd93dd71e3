//! SQL `LIKE` patterns (`%` any run of characters, `_` exactly one, everything else itself; no
//! escape character, as in MLflow's SQL stores), matched without backtracking.
//!
//! One matcher for every path that takes a pattern from outside: the search executor and the
//! MLflow experiment filter. A recursive backtracking matcher is exponential in the number of
//! `%` (`%%%%%%%%%%%%%x` took 18 s on a 40-character name; 50,000 `%` overflowed the stack). Here
//! the pattern is split at its `%`s into segments once, when it is built; a match places the
//! first segment at the start of the text, the last at its end, and every other one at its
//! leftmost occurrence after the previous one. Leftmost placement is optimal (it leaves the most
//! text for the segments after it), so nothing is ever retried: a match costs at most
//! O(text × pattern) character comparisons, uses no recursion, and allocates only the text's
//! characters.

/// The longest pattern accepted, in characters. It bounds the O(text × pattern) worst case of a
/// match (`_a_a_a…` against a long value); real patterns are a name or a prefix.
pub const MAX_LIKE_PATTERN: usize = 1000;

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LikeError {
    #[error("a LIKE pattern may have at most {max} characters; this one has {len}")]
    TooLong { len: usize, max: usize },
}

/// One character of a segment: a literal or `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Char(char),
    Any,
}

impl Atom {
    fn matches(self, c: char) -> bool {
        match self {
            Atom::Char(p) => p == c,
            Atom::Any => true,
        }
    }
}

/// A compiled `LIKE` (or `ILIKE`) pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    /// The pattern split at its `%`s (runs of `%` count as one). With no `%` there is one
    /// segment that must cover the whole text; otherwise the first is a prefix and the last a
    /// suffix (either may be empty), and the ones between float.
    segments: Vec<Vec<Atom>>,
    /// Whether the pattern holds a `%` at all.
    floating: bool,
    case_insensitive: bool,
}

impl LikePattern {
    /// `LIKE`: characters compare exactly.
    pub fn case_sensitive(pattern: &str) -> Result<LikePattern, LikeError> {
        LikePattern::build(pattern, false)
    }

    /// `ILIKE`: pattern and text compare in lower case.
    pub fn case_insensitive(pattern: &str) -> Result<LikePattern, LikeError> {
        LikePattern::build(pattern, true)
    }

    fn build(pattern: &str, case_insensitive: bool) -> Result<LikePattern, LikeError> {
        let len = pattern.chars().count();
        if len > MAX_LIKE_PATTERN {
            return Err(LikeError::TooLong {
                len,
                max: MAX_LIKE_PATTERN,
            });
        }
        let folded;
        let pattern = if case_insensitive {
            folded = pattern.to_lowercase();
            folded.as_str()
        } else {
            pattern
        };
        let segments = pattern
            .split('%')
            .map(|s| {
                s.chars()
                    .map(|c| if c == '_' { Atom::Any } else { Atom::Char(c) })
                    .collect()
            })
            .collect::<Vec<Vec<Atom>>>();
        Ok(LikePattern {
            floating: segments.len() > 1,
            segments,
            case_insensitive,
        })
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = if self.case_insensitive {
            text.to_lowercase().chars().collect()
        } else {
            text.chars().collect()
        };
        let Some((first, rest)) = self.segments.split_first() else {
            return text.is_empty();
        };
        if !self.floating {
            return text.len() == first.len() && at(first, &text, 0);
        }
        let Some((last, middle)) = rest.split_last() else {
            return false;
        };
        if first.len() + last.len() > text.len()
            || !at(first, &text, 0)
            || !at(last, &text, text.len() - last.len())
        {
            return false;
        }
        let end = text.len() - last.len();
        let mut from = first.len();
        for segment in middle {
            match leftmost(segment, &text[..end], from) {
                Some(found) => from = found + segment.len(),
                None => return false,
            }
        }
        true
    }
}

/// Whether `segment` matches `text` starting at `pos` (the caller checked it fits).
fn at(segment: &[Atom], text: &[char], pos: usize) -> bool {
    segment.iter().zip(&text[pos..]).all(|(a, c)| a.matches(*c))
}

/// The first position at or after `from` where `segment` matches inside `text`.
fn leftmost(segment: &[Atom], text: &[char], from: usize) -> Option<usize> {
    let last_start = text.len().checked_sub(segment.len())?;
    (from..=last_start).find(|&pos| at(segment, text, pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn like(p: &str, t: &str) -> bool {
        LikePattern::case_sensitive(p).expect("pattern").matches(t)
    }

    /// The definition, by dynamic programming: `ok[i][j]` says whether the first `i` pattern
    /// characters match the first `j` text characters.
    fn reference(p: &str, t: &str) -> bool {
        let (p, t): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
        let mut ok = vec![vec![false; t.len() + 1]; p.len() + 1];
        ok[0][0] = true;
        for i in 1..=p.len() {
            for j in 0..=t.len() {
                ok[i][j] = match p[i - 1] {
                    '%' => ok[i - 1][j] || (j > 0 && ok[i][j - 1]),
                    '_' => j > 0 && ok[i - 1][j - 1],
                    c => j > 0 && t[j - 1] == c && ok[i - 1][j - 1],
                };
            }
        }
        ok[p.len()][t.len()]
    }

    #[test]
    fn matches_sql_patterns() {
        assert!(like("ali%", "alice"));
        assert!(like("%ice", "alice"));
        assert!(like("a_i%e", "alice"));
        assert!(like("%", ""));
        assert!(like("", ""));
        assert!(like("%l%c%", "alice"));
        assert!(like("a%%b", "axxb"));
        assert!(like("%a%a%", "aa"));
        assert!(!like("%a%a%", "a"));
        assert!(!like("ali", "alice"));
        assert!(!like("ALI%", "alice"));
        assert!(!like("_", ""));
        assert!(!like("", "a"));
        assert!(!like("ab%ba", "aba"), "prefix and suffix may not overlap");
        assert!(like("ab%ba", "abba"));
        assert!(like("é_ö%", "éxö and more"), "characters, not bytes");
    }

    #[test]
    fn ilike_folds_case_of_both_sides() {
        let p = LikePattern::case_insensitive("ALI%").expect("pattern");
        assert!(p.matches("alice") && p.matches("ALIce"));
        assert!(!p.matches("bob"));
    }

    #[test]
    fn pathological_patterns_answer_at_once() {
        // Each of these wedged or killed the server with the recursive matcher.
        let name = "a".repeat(10_000);
        assert!(!like("%%%%%%%%%%%%%x", &name));
        assert!(!like(&format!("{}x", "%".repeat(30)), &name));
        assert!(like(&"%".repeat(30), &name));
        assert!(!like(&"%a".repeat(499), &"a".repeat(498)));
        assert!(like(&format!("{}b", "%a".repeat(499)), &format!("{name}b")));
    }

    #[test]
    fn a_pattern_over_the_limit_is_refused_naming_the_limit() {
        let err = LikePattern::case_sensitive(&"%".repeat(50_000)).expect_err("50,000 %");
        assert_eq!(
            err,
            LikeError::TooLong {
                len: 50_000,
                max: MAX_LIKE_PATTERN
            }
        );
        assert!(err.to_string().contains("1000"), "{err}");
        let at_limit = "%".repeat(MAX_LIKE_PATTERN);
        assert!(like(&at_limit, "anything"));
    }

    proptest! {
        #[test]
        fn agrees_with_the_definition(p in "[ab%_]{0,8}", t in "[ab]{0,10}") {
            prop_assert_eq!(like(&p, &t), reference(&p, &t), "pattern {:?} text {:?}", p, t);
        }
    }
}

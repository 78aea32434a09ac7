//! Strings that match a JSON Schema `pattern`, drawn with proptest's regex strategy.
//!
//! The pattern is parsed with `regex-syntax` and tamed before proptest sees it: anchors and
//! word boundaries become empty (a string that matches the whole pattern also matches it
//! anywhere, which is what JSON Schema asks), character classes are narrowed to printable
//! ASCII where they allow it (so `\d` gives `0-9` and `.` gives no control characters, as a
//! server's own ECMA-262 engine would accept), and repetitions get at most 8 more rounds than
//! their minimum. Every sample is checked afterwards by the caller against the real schema, so
//! taming can only cost samples, never let a wrong one through.
//!
//! Cost: one parse and up to `count` draws; the parser's nesting limit (64) and the
//! repetition cap bound both. Failure: a pattern the parser refuses (look-around, back
//! references) or one that needs more than [`MAX_REPEAT_MIN`] repetitions gives no samples.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange};
use regex_syntax::hir::{Hir, HirKind, Repetition};

/// A repetition that needs more rounds than this makes the pattern too costly to sample.
pub const MAX_REPEAT_MIN: u32 = 1024;
/// Rounds drawn beyond a repetition's minimum, at most.
const EXTRA_ROUNDS: u32 = 8;

/// Up to `count` strings drawn for `pattern`, deterministically from `seed`.
pub fn samples(pattern: &str, count: usize, seed: u64) -> Vec<String> {
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .nest_limit(64)
        .build()
        .parse(pattern)
    else {
        return Vec::new();
    };
    let Some(tamed) = tame(&hir) else {
        return Vec::new();
    };
    let Ok(strategy) = proptest::string::string_regex_parsed(&tamed) else {
        return Vec::new();
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let mut out: Vec<String> = Vec::new();
    for _ in 0..count {
        if let Ok(tree) = strategy.new_tree(&mut runner) {
            let sample = tree.current();
            if !out.contains(&sample) {
                out.push(sample);
            }
        }
    }
    out
}

fn printable_unicode() -> ClassUnicode {
    ClassUnicode::new([ClassUnicodeRange::new(' ', '~')])
}

fn printable_bytes() -> ClassBytes {
    ClassBytes::new([ClassBytesRange::new(b' ', b'~')])
}

/// The pattern without anchors, with narrowed classes and bounded repetitions; `None` when a
/// repetition's minimum is too large to draw.
fn tame(hir: &Hir) -> Option<Hir> {
    Some(match hir.kind() {
        HirKind::Empty | HirKind::Literal(_) => hir.clone(),
        HirKind::Look(_) => Hir::empty(),
        HirKind::Class(Class::Unicode(class)) => {
            let mut narrowed = class.clone();
            narrowed.intersect(&printable_unicode());
            if narrowed.ranges().is_empty() {
                hir.clone()
            } else {
                Hir::class(Class::Unicode(narrowed))
            }
        }
        HirKind::Class(Class::Bytes(class)) => {
            let mut narrowed = class.clone();
            narrowed.intersect(&printable_bytes());
            if narrowed.ranges().is_empty() {
                hir.clone()
            } else {
                Hir::class(Class::Bytes(narrowed))
            }
        }
        HirKind::Repetition(repetition) => {
            if repetition.min > MAX_REPEAT_MIN {
                return None;
            }
            let cap = repetition.min.saturating_add(EXTRA_ROUNDS);
            let max = Some(repetition.max.map_or(cap, |max| max.min(cap)));
            Hir::repetition(Repetition {
                min: repetition.min,
                max,
                greedy: repetition.greedy,
                sub: Box::new(tame(&repetition.sub)?),
            })
        }
        HirKind::Capture(capture) => {
            let mut capture = capture.clone();
            capture.sub = Box::new(tame(&capture.sub)?);
            Hir::capture(capture)
        }
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(tame).collect::<Option<_>>()?),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(tame).collect::<Option<_>>()?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_match_anchored_patterns_and_stay_printable() {
        let pattern = r"^[a-z][a-z0-9_-]{2,15}$";
        let matcher = regex::Regex::new(pattern).unwrap();
        let drawn = samples(pattern, 16, 7);
        assert!(!drawn.is_empty());
        for sample in &drawn {
            assert!(matcher.is_match(sample), "{sample:?}");
        }
        let ascii = regex::Regex::new(r"^[0-9]{3}-\w+\.$").unwrap();
        for sample in samples(r"^\d{3}-\w+\.$", 8, 1) {
            assert!(sample.is_ascii() && !sample.chars().any(char::is_control));
            assert!(ascii.is_match(&sample), "{sample:?}");
        }
    }

    #[test]
    fn samples_are_deterministic_and_bounded() {
        assert_eq!(samples("[a-f]{4}", 4, 3), samples("[a-f]{4}", 4, 3));
        assert!(
            samples("a{5000}", 4, 1).is_empty(),
            "too many rounds to draw"
        );
        assert!(samples("(?=x)", 4, 1).is_empty(), "look-around is refused");
        for sample in samples("x+y*", 16, 2) {
            assert!(sample.len() <= 1 + 8 + 8, "{sample}");
        }
    }
}

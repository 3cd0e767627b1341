//! The text cleaning each reference tokenizer applies before its words
//! are found.
//!
//! open_clip runs ftfy's `fix_text` with its default settings; every step
//! of it is reproduced here except `fix_encoding`, the heuristic repair of
//! mojibake ("cafÃ©" for "café"), which applies only to text its badness
//! score flags. Then Python's `html.unescape` twice, whitespace collapsed,
//! lowercase.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use unicode_normalization::UnicodeNormalization;

/// Hugging Face's CLIP normalizer: NFC, runs of whitespace to one space,
/// lowercase character by character (no final sigma, unlike Python's
/// `str.lower`).
pub fn hugging_face(text: &str) -> String {
    static SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("valid"));
    SPACES.replace_all(&text.nfc().collect::<String>(), " ").chars().flat_map(char::to_lowercase).collect()
}

/// open_clip's `_clean_lower`: `whitespace_clean(basic_clean(text)).lower()`,
/// ready for its case-blind word pattern.
///
/// That pattern (Python's `regex` with IGNORECASE) matches U+0345, the
/// combining ypogegrammeni, with none of its branches: the character
/// separates words and is dropped. A space does the same here.
pub fn open_clip(text: &str) -> String {
    static SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("valid"));
    let text = fix_text(text);
    let text = html_unescape(&html_unescape(&text));
    let text = SPACES.replace_all(py_strip(&text), " ");
    py_strip(&text).to_lowercase().replace('\u{345}', " ")
}

/// Python's `str.strip()`: whitespace as `str.isspace` defines it.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// ftfy's `fix_text` (version 6) without `fix_encoding`: line by line, each
/// line's fixes repeated until nothing changes. HTML entities are decoded
/// until a line containing `<` is met, and not after it.
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    for segment in text.split_inclusive('\n') {
        if segment.contains('<') {
            unescape = false;
        }
        let mut s = segment.to_string();
        loop {
            let before = s.clone();
            if unescape {
                s = ftfy_unescape_html(&s);
            }
            s = s.chars().map(c1_control).collect();
            s = s.chars().map(|c| ligature(c).map_or_else(|| c.to_string(), str::to_string)).collect();
            s = s.chars().map(|c| width(c).unwrap_or_else(|| c.to_string())).collect();
            s = s.chars().map(uncurl).collect();
            s = s.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
            s = terminal_escapes().replace_all(&s, "").into_owned();
            s.retain(|c| !is_control(c));
            s = s.nfc().collect();
            if s == before {
                break;
            }
        }
        out.push_str(&s);
    }
    out
}

fn terminal_escapes() -> &'static Regex {
    static ANSI: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\x1b\[((?:\d|;)*)([a-zA-Z])").expect("valid"));
    &ANSI
}

/// Windows-1252 for the bytes 0x80..=0x9F; the five it leaves undefined
/// map to themselves (Python's `_invalid_charrefs`, ftfy's "sloppy" codec).
const CP1252_HIGH: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}',
    '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
];

/// ftfy's `fix_c1_controls`.
fn c1_control(c: char) -> char {
    match c as u32 {
        n @ 0x80..=0x9f => CP1252_HIGH[(n - 0x80) as usize],
        _ => c,
    }
}

/// ftfy's `fix_latin_ligatures`.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{132}' => "IJ",
        '\u{133}' => "ij",
        '\u{149}' => "\u{2bc}n",
        '\u{1f1}' => "DZ",
        '\u{1f2}' => "Dz",
        '\u{1f3}' => "dz",
        '\u{1c4}' => "D\u{17d}",
        '\u{1c5}' => "D\u{17e}",
        '\u{1c6}' => "d\u{17e}",
        '\u{1c7}' => "LJ",
        '\u{1c8}' => "Lj",
        '\u{1c9}' => "lj",
        '\u{1ca}' => "NJ",
        '\u{1cb}' => "Nj",
        '\u{1cc}' => "nj",
        '\u{fb00}' => "ff",
        '\u{fb01}' => "fi",
        '\u{fb02}' => "fl",
        '\u{fb03}' => "ffi",
        '\u{fb04}' => "ffl",
        '\u{fb05}' => "\u{17f}t",
        '\u{fb06}' => "st",
        _ => return None,
    })
}

/// ftfy's `fix_character_width`: the ideographic space and the full- and
/// half-width forms to their NFKC equivalents.
fn width(c: char) -> Option<String> {
    match c as u32 {
        0x3000 => Some(" ".into()),
        0xff01..=0xffef => {
            let n: String = c.nfkc().collect();
            (n != c.to_string()).then_some(n)
        }
        _ => None,
    }
}

/// ftfy's `uncurl_quotes`.
fn uncurl(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

/// ftfy's `remove_control_chars`.
fn is_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0x206a..=0x206f | 0xfeff | 0xfff9..=0xfffc)
}

fn entity(name: &str) -> Option<&'static str> {
    htmlize::ENTITIES.get(name.as_bytes()).map(|v| std::str::from_utf8(v).expect("entities are UTF-8"))
}

/// ftfy's `unescape_html`: `&name;` entities (and lowercase names written
/// in capitals, when that is not itself an entity) and numeric references
/// that end in `;`.
fn ftfy_unescape_html(s: &str) -> String {
    static ENTITY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"&#?[0-9A-Za-z]{1,24};").expect("valid"));
    ENTITY
        .replace_all(s, |c: &Captures| {
            let text = &c[0];
            if let Some(v) = entity(text) {
                return v.to_string();
            }
            if text.starts_with("&#") {
                let u = html_unescape(text);
                return if u.contains(';') { text.to_string() } else { u };
            }
            let lower = text.to_lowercase();
            match entity(&lower) {
                Some(v) if lower.to_uppercase() == text && lower != text => v.to_uppercase(),
                _ => text.to_string(),
            }
        })
        .into_owned()
}

/// Python's `html.unescape` (HTML5 character references, as in text).
pub fn html_unescape(s: &str) -> String {
    static CHARREF: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0c <&#;]{1,32};?)").expect("valid"));
    if !s.contains('&') {
        return s.to_string();
    }
    CHARREF
        .replace_all(s, |c: &Captures| {
            let r = &c[1];
            if let Some(digits) = r.strip_prefix('#') {
                let (digits, radix) = match digits.strip_prefix(['x', 'X']) {
                    Some(hex) => (hex, 16),
                    None => (digits, 10),
                };
                // Too long to parse is beyond Unicode, like any value above it.
                let n = u64::from_str_radix(digits.trim_end_matches(';'), radix).unwrap_or(u64::MAX);
                return numeric_reference(n);
            }
            if let Some(v) = entity(&format!("&{r}")) {
                return v.to_string();
            }
            // The longest entity the reference starts with (legacy names
            // such as `&not` need no semicolon).
            for x in (2..r.len()).rev() {
                if r.is_char_boundary(x)
                    && let Some(v) = entity(&format!("&{}", &r[..x]))
                {
                    return format!("{v}{}", &r[x..]);
                }
            }
            format!("&{r}")
        })
        .into_owned()
}

fn numeric_reference(n: u64) -> String {
    match n {
        0 => "\u{fffd}".into(),
        0x0d => "\r".into(),
        0x80..=0x9f => CP1252_HIGH[(n - 0x80) as usize].to_string(),
        0xd800..=0xdfff => "\u{fffd}".into(),
        n if n > 0x10ffff => "\u{fffd}".into(),
        0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f..=0x9f | 0xfdd0..=0xfdef => String::new(),
        n if n & 0xfffe == 0xfffe => String::new(),
        n => char::from_u32(n as u32).map(String::from).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_references_as_python_decodes_them() {
        for (input, want) in [
            ("&amp;&lt;x&gt;", "&<x>"),
            ("&notit; &not &notin;", "\u{ac}it; \u{ac} \u{2209}"),
            ("&#65;&#x42;&#X43", "ABC"),
            ("&#0;&#13;&#128;&#1;&#xd800;&#99999999999999999999;", "\u{fffd}\r\u{20ac}\u{fffd}\u{fffd}"),
            ("&unknown; & &;", "&unknown; & &;"),
        ] {
            assert_eq!(html_unescape(input), want, "{input}");
        }
    }

    #[test]
    fn ftfy_fixes_and_cleaning() {
        assert_eq!(open_clip("  \u{201c}Hello\u{201d}  \u{FB01}ne\u{FF01}\r\n&EACUTE;t\u{e9} "), "\"hello\" fine! \u{e9}t\u{e9}");
        assert_eq!(open_clip("a\u{1b}[31mred\u{7}"), "ared");
        // Once a line has `<`, ftfy leaves entities alone; open_clip's own
        // unescaping still decodes them.
        assert_eq!(open_clip("<b>&EACUTE;</b>"), "<b>&eacute;</b>");
        assert_eq!(hugging_face("  A\u{0301}\t\tB  "), " \u{e1} b ");
    }
}

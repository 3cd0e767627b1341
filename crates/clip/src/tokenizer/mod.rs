//! CLIP's byte-level BPE tokenizer: 49,408 tokens, start and end tokens,
//! context 77 with truncation that keeps the end token.
//!
//! Two vocabulary files are read, each with the text cleaning of the
//! reference that ships it, so ids match that reference exactly:
//!
//! * open_clip's `bpe_simple_vocab_16e6.txt.gz` (merges only; the vocabulary
//!   is derived from them as open_clip does), cleaned as open_clip cleans:
//!   ftfy's `fix_text` (see [`clean`]), HTML unescaped twice, whitespace
//!   collapsed, lowercased;
//! * a Hugging Face `tokenizer.json` (vocabulary and merges), cleaned as its
//!   normalizer says for CLIP: NFC, whitespace collapsed, lowercased; special
//!   tokens are split off before the words.
//!
//! The references differ from each other on text that ftfy or HTML
//! unescaping changes (`&amp;`, curly quotes, ligatures, full-width forms);
//! on plain text they agree.

mod clean;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::error::{Error, Result};

/// CLIP's context length.
pub const CONTEXT: usize = 77;

/// The words of a cleaned text, as both references split them.
const WORDS: &str = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// GPT-2's split inside a word, which Hugging Face's ByteLevel step applies
/// when its `use_regex` is set. CLIP's words hold no whitespace, so the
/// pattern's whitespace branches cannot occur.
const BYTE_LEVEL_WORDS: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// Whose cleaning and special-token handling the tokenizer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// open_clip's `SimpleTokenizer` (`bpe_simple_vocab_16e6.txt.gz`).
    OpenClip,
    /// Hugging Face tokenizers (`tokenizer.json`).
    HuggingFace,
}

#[derive(Debug, Clone)]
pub struct Tokenizer {
    flavor: Flavor,
    vocab: HashMap<String, u32>,
    ranks: HashMap<(String, String), u32>,
    byte_chars: [char; 256],
    start: u32,
    end: u32,
    /// Special tokens recognised in text.
    specials: Vec<(String, u32)>,
    words: Regex,
    /// Hugging Face's ByteLevel split of each word, when the file asks for it.
    byte_level_words: Option<Regex>,
    /// Where the vocabulary came from, for errors and identities.
    pub source: PathBuf,
}

fn printable(b: u32) -> bool {
    (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
}

/// GPT-2's reversible map from bytes to printable characters, indexed by byte.
fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        out[b as usize] = if printable(b) {
            char::from_u32(b).expect("latin-1")
        } else {
            next += 1;
            char::from_u32(next - 1).expect("below the surrogates")
        };
    }
    out
}

/// The byte characters in open_clip's vocabulary order: the printable
/// bytes first, then the others.
fn byte_chars_in_vocab_order() -> Vec<char> {
    let chars = byte_chars();
    let (shown, hidden): (Vec<u32>, Vec<u32>) = (0..256u32).partition(|&b| printable(b));
    shown.into_iter().chain(hidden).map(|b| chars[b as usize]).collect()
}

fn file_error(path: &Path, message: impl Into<String>) -> Error {
    Error::ModelFile { path: path.to_path_buf(), message: message.into() }
}

/// The parts of a `tokenizer.json` that matter to CLIP.
#[derive(Debug, Deserialize)]
struct HfFile {
    model: HfModel,
    #[serde(default)]
    added_tokens: Vec<HfAdded>,
    normalizer: Option<serde_json::Value>,
    pre_tokenizer: Option<serde_json::Value>,
}

/// Whether a `tokenizer.json` pre-tokenizer's ByteLevel step splits words
/// again (its `use_regex`, true when absent).
fn byte_level_regex(pre: &serde_json::Value) -> bool {
    match pre {
        serde_json::Value::Object(m) if m.get("type").and_then(|t| t.as_str()) == Some("ByteLevel") => {
            m.get("use_regex").and_then(serde_json::Value::as_bool).unwrap_or(true)
        }
        serde_json::Value::Object(m) => m.values().any(byte_level_regex),
        serde_json::Value::Array(v) => v.iter().any(byte_level_regex),
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
struct HfModel {
    #[serde(rename = "type")]
    kind: String,
    vocab: HashMap<String, u32>,
    merges: Vec<HfMerge>,
    end_of_word_suffix: Option<String>,
}

/// A merge: `"a b"` (older files) or `["a", "b"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HfMerge {
    Joined(String),
    Pair(String, String),
}

#[derive(Debug, Deserialize)]
struct HfAdded {
    id: u32,
    content: String,
}

impl Tokenizer {
    /// Reads `bpe_simple_vocab_16e6.txt.gz` (or its unzipped text) or a
    /// `tokenizer.json`, by name.
    pub fn from_file(path: &Path) -> Result<Self> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".json") { Self::from_tokenizer_json(path) } else { Self::from_open_clip_vocab(path) }
    }

    /// open_clip's merges file; the vocabulary is the 256 byte characters,
    /// the same with `</w>`, one token per merge, then the start and end tokens.
    pub fn from_open_clip_vocab(path: &Path) -> Result<Self> {
        let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            // open_clip's file unzips to 1.4 MB; a gzip bomb stops at the cap.
            const MAX_TEXT: u64 = 64 << 20;
            let mut s = String::new();
            flate2::read::GzDecoder::new(&raw[..])
                .take(MAX_TEXT + 1)
                .read_to_string(&mut s)
                .map_err(|e| file_error(path, format!("not a gzip text file: {e}")))?;
            if s.len() as u64 > MAX_TEXT {
                return Err(file_error(path, format!("unzips to more than {MAX_TEXT} bytes; a CLIP merges file is about 1.4 MB")));
            }
            s
        } else {
            String::from_utf8(raw).map_err(|_| file_error(path, "not UTF-8 text"))?
        };
        // open_clip keeps lines 1 ..= 48894 (49152 - 256 - 2) of the file.
        let lines: Vec<&str> = text.split('\n').collect();
        let wanted = 49152 - 256 - 2;
        if lines.len() < wanted + 1 {
            return Err(file_error(path, format!("{} lines; a CLIP merges file has at least {}", lines.len(), wanted + 1)));
        }
        let bytes = byte_chars_in_vocab_order();
        let mut tokens: Vec<String> = bytes.iter().map(|c| c.to_string()).collect();
        tokens.extend(bytes.iter().map(|c| format!("{c}</w>")));
        let mut merges = Vec::with_capacity(wanted);
        for (i, line) in lines[1..=wanted].iter().enumerate() {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => {
                    tokens.push(format!("{a}{b}"));
                    merges.push((a.to_string(), b.to_string()));
                }
                _ => return Err(file_error(path, format!("line {}: {line:?} is not a merge of two symbols", i + 2))),
            }
        }
        tokens.extend(["<start_of_text>".to_string(), "<end_of_text>".to_string()]);
        let vocab: HashMap<String, u32> = tokens.into_iter().enumerate().map(|(i, t)| (t, i as u32)).collect();
        let (start, end) = (vocab["<start_of_text>"], vocab["<end_of_text>"]);
        let specials = vec![("<start_of_text>".to_string(), start), ("<end_of_text>".to_string(), end)];
        Self::assemble(Flavor::OpenClip, vocab, merges, start, end, specials, path)
    }

    /// A Hugging Face `tokenizer.json` of a CLIP model. Files whose
    /// normalizer or pre-tokenizer is not CLIP's are refused: their ids
    /// would not be the model's.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: HfFile = serde_json::from_str(&text).map_err(|e| file_error(path, format!("not a tokenizer.json: {e}")))?;
        let m = file.model;
        if m.kind != "BPE" || m.end_of_word_suffix.as_deref() != Some("</w>") {
            return Err(file_error(
                path,
                format!("model is {} with end_of_word_suffix {:?}; CLIP's is BPE with \"</w>\"", m.kind, m.end_of_word_suffix),
            ));
        }
        let normalizer = file.normalizer.map(|v| v.to_string()).unwrap_or_default();
        for part in ["NFC", "Lowercase", "\\\\s+"] {
            if !normalizer.contains(part) {
                return Err(file_error(path, format!("normalizer {normalizer} is not CLIP's (NFC, whitespace collapsed, Lowercase)")));
            }
        }
        let split_again = file.pre_tokenizer.as_ref().is_some_and(byte_level_regex);
        let pre = file.pre_tokenizer.map(|v| v.to_string()).unwrap_or_default();
        if !pre.contains("ByteLevel") || !pre.contains("[\\\\p{L}]+|[\\\\p{N}]") {
            return Err(file_error(path, format!("pre_tokenizer {pre} is not CLIP's (its word pattern, then ByteLevel)")));
        }
        let merges: Vec<(String, String)> = m
            .merges
            .into_iter()
            .enumerate()
            .map(|(i, merge)| match merge {
                HfMerge::Pair(a, b) => Ok((a, b)),
                HfMerge::Joined(s) => match s.split_once(' ') {
                    Some((a, b)) if !b.contains(' ') => Ok((a.to_string(), b.to_string())),
                    _ => Err(file_error(path, format!("merge {i}: {s:?} is not two symbols"))),
                },
            })
            .collect::<Result<_>>()?;
        let find = |content: &str| {
            file.added_tokens
                .iter()
                .find(|t| t.content == content)
                .map(|t| t.id)
                .ok_or_else(|| file_error(path, format!("no added token {content:?}")))
        };
        let (start, end) = (find("<|startoftext|>")?, find("<|endoftext|>")?);
        let specials = file.added_tokens.iter().map(|t| (t.content.clone(), t.id)).collect();
        let mut tokenizer = Self::assemble(Flavor::HuggingFace, m.vocab, merges, start, end, specials, path)?;
        tokenizer.byte_level_words = split_again.then(|| Regex::new(BYTE_LEVEL_WORDS).expect("a valid pattern"));
        Ok(tokenizer)
    }

    fn assemble(
        flavor: Flavor,
        vocab: HashMap<String, u32>,
        merges: Vec<(String, String)>,
        start: u32,
        end: u32,
        specials: Vec<(String, u32)>,
        path: &Path,
    ) -> Result<Self> {
        let bytes = byte_chars();
        if let Some(c) = bytes.iter().find(|c| !vocab.contains_key(&format!("{c}</w>")) || !vocab.contains_key(&c.to_string())) {
            return Err(file_error(path, format!("the vocabulary lacks the byte symbol {c:?}")));
        }
        for (a, b) in &merges {
            if !vocab.contains_key(&format!("{a}{b}")) {
                return Err(file_error(path, format!("merge {a:?} + {b:?} makes a token the vocabulary lacks")));
            }
        }
        let pattern = match flavor {
            // open_clip's pattern ignores case, but it runs on lowercased
            // text, where that changes one thing (see `clean::open_clip`).
            Flavor::OpenClip | Flavor::HuggingFace => {
                let names: Vec<String> = specials.iter().map(|(s, _)| regex::escape(s)).collect();
                format!("{}|{WORDS}", names.join("|"))
            }
        };
        Ok(Tokenizer {
            flavor,
            ranks: merges.into_iter().enumerate().map(|(i, m)| (m, i as u32)).collect(),
            vocab,
            byte_chars: bytes,
            start,
            end,
            specials,
            words: Regex::new(&pattern).expect("a valid pattern"),
            byte_level_words: None,
            source: path.to_path_buf(),
        })
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn start_token(&self) -> u32 {
        self.start
    }

    pub fn end_token(&self) -> u32 {
        self.end
    }

    /// Token ids of a text without the start and end tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        match self.flavor {
            // Special-token names are words of the cleaned text.
            Flavor::OpenClip => self.encode_words(&clean::open_clip(text), &mut ids),
            Flavor::HuggingFace => {
                // Special tokens are split off the raw text (they are not
                // normalised), then each piece is cleaned and split into words.
                let mut rest = text;
                while !rest.is_empty() {
                    let next = self
                        .specials
                        .iter()
                        .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                        .min_by_key(|(at, len, _)| (*at, usize::MAX - len));
                    let (piece, special, after) = match next {
                        Some((at, len, id)) => (&rest[..at], Some(id), &rest[at + len..]),
                        None => (rest, None, ""),
                    };
                    self.encode_words(&clean::hugging_face(piece), &mut ids);
                    ids.extend(special);
                    rest = after;
                }
            }
        }
        ids
    }

    fn encode_words(&self, text: &str, ids: &mut Vec<u32>) {
        for word in self.words.find_iter(text).map(|m| m.as_str()) {
            if self.flavor == Flavor::OpenClip
                && let Some((_, id)) = self.specials.iter().find(|(s, _)| s == word)
            {
                ids.push(*id);
                continue;
            }
            let pieces: Vec<&str> = match &self.byte_level_words {
                Some(re) => re.find_iter(word).map(|m| m.as_str()).collect(),
                None => vec![word],
            };
            for piece in pieces {
                let symbols: String = piece.bytes().map(|b| self.byte_chars[b as usize]).collect();
                for token in self.bpe(&symbols) {
                    ids.push(self.vocab[&token]);
                }
            }
        }
    }

    /// The merges of one word, lowest rank first, every occurrence of the
    /// chosen pair in one left-to-right pass (open_clip's loop).
    fn bpe(&self, word: &str) -> Vec<String> {
        let chars: Vec<char> = word.chars().collect();
        let mut parts: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        if let Some(last) = parts.last_mut() {
            last.push_str("</w>");
        }
        while parts.len() > 1 {
            let best = parts
                .windows(2)
                .filter_map(|w| self.ranks.get(&(w[0].clone(), w[1].clone())).map(|&r| (r, w[0].clone(), w[1].clone())))
                .min_by_key(|(r, _, _)| *r);
            let Some((_, first, second)) = best else { break };
            let mut merged = Vec::with_capacity(parts.len());
            let mut i = 0;
            while i < parts.len() {
                if i + 1 < parts.len() && parts[i] == first && parts[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(std::mem::take(&mut parts[i]));
                    i += 1;
                }
            }
            parts = merged;
        }
        parts
    }

    /// The start token, the text's tokens and the end token, truncated to
    /// `context` ids with the end token kept last (as both references do).
    pub fn tokenize(&self, text: &str, context: usize) -> Vec<u32> {
        let mut ids = Vec::with_capacity(context);
        ids.push(self.start);
        ids.extend(self.encode(text));
        ids.push(self.end);
        if ids.len() > context {
            ids.truncate(context.max(1));
            *ids.last_mut().expect("context >= 1") = self.end;
        }
        ids
    }
}

//! Reading a judge's answer: a verdict from its text, as LlavaGuard answers
//! (a JSON object with `rating`, `category` and `rationale`, sometimes with
//! prose around it) or a bare "Safe"/"Unsafe", and P(unsafe) from the
//! verdict token's log-probabilities where the server returns them.

use serde::{Deserialize, Serialize};

/// What a judge decided about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    #[serde(rename = "unsafe")]
    pub unsafe_: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
}

/// "unsafe" or "safe" at the start of a rating, in any case and with any
/// quotes or spaces around it.
fn rating(value: &str) -> Option<bool> {
    let v = value.trim().trim_matches(|c: char| !c.is_alphanumeric()).to_ascii_lowercase();
    if v.starts_with("unsafe") {
        Some(true)
    } else if v.starts_with("safe") {
        Some(false)
    } else {
        None
    }
}

/// The verdict in an answer's text: the first JSON object in it with a
/// `rating` (or `verdict`) of Safe or Unsafe, else an answer that starts
/// with one of those words. Anything else is unparsable, and is never taken
/// for a verdict.
pub fn parse(text: &str) -> Result<Verdict, String> {
    for (i, _) in text.match_indices('{') {
        let mut values = serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde_json::Value>();
        let Some(Ok(serde_json::Value::Object(m))) = values.next() else { continue };
        let field = |names: &[&str]| m.iter().find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n))).and_then(|(_, v)| v.as_str());
        if let Some(unsafe_) = field(&["rating", "verdict"]).and_then(rating) {
            let category = field(&["category"]).map(str::to_string);
            let rationale = field(&["rationale"]).map(str::to_string);
            return Ok(Verdict { unsafe_, category, rationale });
        }
    }
    let first = text.trim_start().split(|c: char| c.is_whitespace() || c == '.' || c == ',').next().unwrap_or("");
    match rating(first).filter(|_| !first.is_empty() && !first.starts_with('{')) {
        Some(unsafe_) => Ok(Verdict { unsafe_, category: None, rationale: None }),
        None => Err(format!("no Safe/Unsafe rating in the answer: {:?}", text.chars().take(200).collect::<String>())),
    }
}

/// P(unsafe) from a chat completion choice's `logprobs.content`: the token
/// where the rating's value starts (after a `rating` key, or the answer's
/// first word), normalised over its top alternatives that begin "uns" or
/// "saf". None when the server sent no log-probabilities or the rating's
/// token has no such alternatives.
pub fn p_unsafe(logprobs: &serde_json::Value) -> Option<f64> {
    let tokens = logprobs.get("content")?.as_array()?;
    let texts: Vec<&str> = tokens.iter().map(|t| t.get("token").and_then(|v| v.as_str()).unwrap_or("")).collect();
    let whole: String = texts.concat();
    let lower = whole.to_ascii_lowercase();
    let from = lower.find("\"rating\"").map_or(0, |k| k + "\"rating\"".len());
    let offset = from + lower[from..].find(|c: char| c.is_ascii_alphabetic())?;
    let mut at = 0;
    let token = tokens.iter().zip(&texts).find_map(|(t, s)| {
        let span = at..at + s.len();
        at += s.len();
        span.contains(&offset).then_some(t)
    })?;
    let (mut pu, mut ps) = (0.0, 0.0);
    for alt in token.get("top_logprobs")?.as_array()? {
        let (Some(t), Some(lp)) = (alt.get("token").and_then(|v| v.as_str()), alt.get("logprob").and_then(|v| v.as_f64())) else { continue };
        let t = t.trim().trim_matches('"').to_ascii_lowercase();
        if t.starts_with("uns") {
            pu += lp.exp();
        } else if t.starts_with("saf") {
            ps += lp.exp();
        }
    }
    (pu + ps > 0.0).then(|| pu / (pu + ps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_come_from_llavaguard_json_prose_around_it_or_a_bare_word() {
        let v = parse(r#"{"rating": "Unsafe", "category": "O2: Violence", "rationale": "A weapon."}"#).unwrap();
        assert_eq!(v, Verdict { unsafe_: true, category: Some("O2: Violence".into()), rationale: Some("A weapon.".into()) });
        let v = parse("Sure! Here is my assessment:\n```json\n{\"Rating\": \"safe\"}\n```\nLet me know.").unwrap();
        assert!(!v.unsafe_);
        assert!(parse("{not json} then {\"verdict\": \"UNSAFE\"}").unwrap().unsafe_);
        assert!(parse("Unsafe. The image shows a cross.").unwrap().unsafe_);
        assert!(!parse("  safe").unwrap().unsafe_);
        for bad in ["I cannot assess this image.", "", "{\"rating\": \"maybe\"}", "{\"rating\": 1}", "unsure"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn p_unsafe_comes_from_the_rating_tokens_alternatives() {
        let lp = |p: f64| p.ln();
        let logprobs = serde_json::json!({"content": [
            {"token": "Sure {\"", "logprob": 0.0, "top_logprobs": []},
            {"token": "rating\": \"", "logprob": 0.0, "top_logprobs": []},
            {"token": "Uns", "logprob": lp(0.6), "top_logprobs": [
                {"token": "Uns", "logprob": lp(0.6)}, {"token": "Safe", "logprob": lp(0.3)}, {"token": "The", "logprob": lp(0.1)}]},
            {"token": "afe\"}", "logprob": 0.0, "top_logprobs": []},
        ]});
        assert!((p_unsafe(&logprobs).unwrap() - 0.6 / 0.9).abs() < 1e-12);
        let bare = serde_json::json!({"content": [{"token": " safe", "logprob": lp(0.8), "top_logprobs": [
            {"token": " safe", "logprob": lp(0.8)}, {"token": " unsafe", "logprob": lp(0.2)}]}]});
        assert!((p_unsafe(&bare).unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(p_unsafe(&serde_json::json!({"content": [{"token": "Hmm", "top_logprobs": []}]})), None);
        assert_eq!(p_unsafe(&serde_json::json!(null)), None);
    }
}

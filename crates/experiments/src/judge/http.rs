//! A judge behind the chat-completions API: the policy as the system
//! message, the image as a base64 PNG data URL beside the user's text,
//! temperature 0 and a seed, and, when asked, the answer tokens'
//! log-probabilities.

use base64::Engine as _;

use super::{Judge, JudgeRequest, Reply};
use crate::error::Result;
use crate::remote::RequestError;
use crate::remote::body::Body;
use crate::remote::http::{Endpoint, EndpointOptions};
use crate::secret::Secret;

#[derive(Debug)]
pub struct ChatJudge {
    endpoint: Endpoint,
    model: Option<String>,
    logprobs: bool,
    max_tokens: u32,
}

impl ChatJudge {
    pub fn new(base_url: &str, model: Option<String>, key: Option<Secret>, opts: EndpointOptions, logprobs: bool, max_tokens: u32) -> Result<Self> {
        Ok(ChatJudge { endpoint: Endpoint::new("judge", base_url, "chat/completions", key, opts)?, model, logprobs, max_tokens })
    }

    /// The request body for `r`.
    fn body(&self, r: &JudgeRequest) -> serde_json::Value {
        let image = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&r.png));
        let mut body = serde_json::json!({
            "messages": [
                {"role": "system", "content": r.prompt.system},
                {"role": "user", "content": [
                    {"type": "text", "text": r.prompt.user},
                    {"type": "image_url", "image_url": {"url": image}},
                ]},
            ],
            "temperature": 0,
            "seed": r.seed,
            "max_tokens": self.max_tokens,
        });
        if let Some(m) = &self.model {
            body["model"] = m.clone().into();
        }
        if self.logprobs {
            body["logprobs"] = true.into();
            body["top_logprobs"] = 5.into();
        }
        body
    }
}

/// The answer's text (`choices[0].message.content`), P(unsafe) from its
/// log-probabilities where sent, and its cost (`cost` or `usage.cost`).
pub fn parse_reply(body: &[u8]) -> std::result::Result<Reply, RequestError> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| RequestError::retryable("malformed response", format!("not JSON: {e}")))?;
    let choice = &json["choices"][0];
    let text = choice["message"]["content"]
        .as_str()
        .ok_or_else(|| RequestError::retryable("malformed response", "no choices[0].message.content in the answer"))?;
    let p_unsafe = super::answer::p_unsafe(&choice["logprobs"]);
    let cost = json["cost"].as_f64().or_else(|| json["usage"]["cost"].as_f64());
    Ok(Reply { text: text.to_string(), p_unsafe, cost })
}

impl Judge for ChatJudge {
    fn describe(&self) -> String {
        format!("http {}{}", self.endpoint.url(), self.model.as_ref().map(|m| format!(" (model {m})")).unwrap_or_default())
    }

    fn ask(&self, request: &JudgeRequest) -> std::result::Result<Reply, RequestError> {
        let body = self.body(request);
        parse_reply(&self.endpoint.post(&Body::json(&body))?)
    }
}

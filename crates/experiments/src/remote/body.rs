//! Request bodies: JSON, and `multipart/form-data` for image uploads.

/// A request's body and its content type.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn json(value: &serde_json::Value) -> Self {
        Body { content_type: "application/json".into(), bytes: serde_json::to_vec(value).expect("a JSON value serialises") }
    }
}

/// A `multipart/form-data` body (RFC 7578) of text fields and files.
#[derive(Debug)]
pub struct Multipart {
    boundary: String,
    bytes: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    /// A form with a random boundary: 32 hex digits, which a part could only
    /// contain by chance once in 2^128 draws.
    pub fn new() -> Self {
        let boundary = format!("pairguard-{:032x}", rand::random::<u128>());
        Multipart { boundary, bytes: Vec::new() }
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.head(name, None);
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    pub fn file(mut self, name: &str, file_name: &str, mime: &str, data: &[u8]) -> Self {
        self.head(name, Some((file_name, mime)));
        self.bytes.extend_from_slice(data);
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    fn head(&mut self, name: &str, file: Option<(&str, &str)>) {
        // Quotes and line breaks in names are percent-encoded, as browsers
        // encode them (WHATWG's multipart/form-data encoding).
        let quoted = |s: &str| s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A");
        let mut head = format!("--{}\r\nContent-Disposition: form-data; name=\"{}\"", self.boundary, quoted(name));
        if let Some((file_name, mime)) = file {
            head.push_str(&format!("; filename=\"{}\"\r\nContent-Type: {mime}", quoted(file_name)));
        }
        head.push_str("\r\n\r\n");
        self.bytes.extend_from_slice(head.as_bytes());
    }

    pub fn finish(mut self) -> Body {
        self.bytes.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        Body { content_type: format!("multipart/form-data; boundary={}", self.boundary), bytes: self.bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_lays_out_its_parts_between_one_boundary() {
        let body = Multipart::new().file("image", "image.png", "image/png", b"\x89PNG\r\n").text("prompt", "remove the \"gun\"").finish();
        let boundary = body.content_type.strip_prefix("multipart/form-data; boundary=").unwrap().to_string();
        assert_eq!(boundary.len(), "pairguard-".len() + 32);
        let mut want =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"image.png\"\r\nContent-Type: image/png\r\n\r\n")
                .into_bytes();
        want.extend_from_slice(b"\x89PNG\r\n\r\n");
        want.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nremove the \"gun\"\r\n--{boundary}--\r\n").as_bytes(),
        );
        assert_eq!(body.bytes, want);
        // Two forms do not share a boundary.
        assert_ne!(Multipart::new().finish().content_type, Multipart::new().finish().content_type);
    }

    #[test]
    fn quotes_and_line_breaks_in_names_cannot_end_the_header() {
        let body = Multipart::new().text("a\"b\r\nX-Injected: 1", "v").finish();
        let text = String::from_utf8(body.bytes).unwrap();
        assert!(text.contains("name=\"a%22b%0D%0AX-Injected: 1\""), "{text}");
        assert_eq!(text.matches("\r\n").count(), 5);
    }
}

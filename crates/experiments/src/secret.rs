//! A secret (an API key) that formats as `***`, so that no `{:?}` or `{}`
//! of a struct holding it can print it.

/// An API key: its value is read only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for the one place that sends it (a request header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_formats_its_value() {
        let s = Secret::new("sk-test-1234".into());
        let holder = (Some(s.clone()), "x");
        for shown in [format!("{s}"), format!("{s:?}"), format!("{holder:?}"), format!("{:#?}", Some(&s))] {
            assert!(!shown.contains("sk-test") && shown.contains("***"), "{shown}");
        }
        assert_eq!(s.expose(), "sk-test-1234");
    }
}

//! Placeholder until the RFC 6570 matcher lands.
#[derive(Debug, thiserror::Error)]
#[error("unsupported")]
pub struct TemplateError;
pub struct UriTemplate(String);
impl UriTemplate {
    pub fn parse(t: &str) -> Result<UriTemplate, TemplateError> {
        Ok(UriTemplate(t.to_string()))
    }
    pub fn is_template(s: &str) -> bool {
        s.contains('{')
    }
    pub fn matches(&self, c: &str) -> bool {
        self.0 == c
    }
}

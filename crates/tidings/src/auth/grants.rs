//! What a verified token allows: the topics it may publish to, the topics
//! whose private updates it may read, and the payload attached to each of
//! its subscriptions.
//!
//! Draft-08 grants come from Mercure authorization details; draft-07 grants
//! from the `mercure` claim's topic selectors. Grants are parsed all or
//! nothing: one bad entry refuses the whole token, since acting on the rest
//! would silently change what the token allows.

use super::Generation;
use crate::matcher::{MatchKind, Matcher};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::SystemTime;
use url::Url;

/// The `type` of a Mercure authorization detail, compared byte for byte.
const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";
/// Most entries accepted in `authorization_details`, whatever their type.
pub const MAX_DETAILS: usize = 64;
/// Most topic matchers in one detail, or selectors in one draft-07 list.
pub const MAX_TOPICS: usize = 256;
/// Longest matcher or selector, in bytes.
pub const MAX_MATCHER_LEN: usize = 1024;

/// The rights of one verified token (or of an anonymous subscriber).
#[derive(Debug)]
pub struct Grants {
    pub generation: Generation,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub expires_at: Option<SystemTime>,
    pub(super) rights: Rights,
}

impl Grants {
    /// No rights: what a subscriber without a token has.
    pub fn anonymous() -> Grants {
        Grants {
            generation: Generation::Draft08,
            subject: None,
            issuer: None,
            expires_at: None,
            rights: Rights::default(),
        }
    }

    /// Whether the token may publish an update with this topic; a publisher
    /// needs this for every topic of the update.
    pub fn may_publish(&self, topic: &str) -> bool {
        self.rights
            .grants
            .iter()
            .any(|grant| grant.publish && grant.matches(topic))
    }

    /// Whether the token may read a private update with these topics
    /// (canonical and alternates): one granted topic is enough.
    pub fn may_read<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        topics.into_iter().any(|topic| self.may_subscribe_to(topic))
    }

    /// Whether the token grants `subscribe` on this topic.
    pub fn may_subscribe_to(&self, topic: &str) -> bool {
        self.rights
            .grants
            .iter()
            .any(|grant| grant.subscribe && grant.matches(topic))
    }

    /// The payload of a subscription made with this matcher string. Draft-08:
    /// that of the first `subscribe` detail matching the string as if it
    /// were a topic (so order matters, and `*` serves as a default).
    /// Draft-07: `mercure.payload`, whatever the subscription.
    pub fn payload_for(&self, subscription_matcher: &str) -> Option<&Value> {
        match self.generation {
            Generation::Draft07 => self.rights.legacy_payload.as_ref(),
            Generation::Draft08 => self
                .rights
                .grants
                .iter()
                .find(|grant| grant.subscribe && grant.matches(subscription_matcher))
                .and_then(|grant| grant.payload.as_ref()),
        }
    }
}

/// Why a token's grants could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct GrantError(String);

/// The parsed grants, in token order.
#[derive(Debug, Default)]
pub(super) struct Rights {
    grants: Vec<Grant>,
    legacy_payload: Option<Value>,
}

#[derive(Debug)]
struct Grant {
    publish: bool,
    subscribe: bool,
    topics: Vec<Matcher>,
    payload: Option<Value>,
}

impl Grant {
    fn matches(&self, topic: &str) -> bool {
        self.topics.iter().any(|matcher| matcher.matches(topic))
    }
}

impl Rights {
    /// Reads a draft-08 `authorization_details` claim; relative URL
    /// patterns resolve against `base`, the hub's URL.
    pub(super) fn from_authorization_details(
        details: &Value,
        base: &Url,
    ) -> Result<Rights, GrantError> {
        let details = details
            .as_array()
            .ok_or_else(|| GrantError("`authorization_details` is not an array".into()))?;
        if details.len() > MAX_DETAILS {
            return Err(GrantError(format!(
                "more than {MAX_DETAILS} authorization details"
            )));
        }
        let mut grants = Vec::new();
        for (index, detail) in details.iter().enumerate() {
            let error =
                |reason: String| GrantError(format!("authorization detail #{index}: {reason}"));
            if is_mercure_detail(detail).map_err(error)? {
                grants.push(mercure_detail(detail, base).map_err(error)?);
            }
        }
        Ok(Rights {
            grants,
            legacy_payload: None,
        })
    }

    /// Reads a draft-07 `mercure` claim.
    pub(super) fn from_mercure_claim(claim: &Value, base: &Url) -> Result<Rights, GrantError> {
        #[derive(Deserialize)]
        struct MercureClaim {
            #[serde(default)]
            publish: Option<Vec<String>>,
            #[serde(default)]
            subscribe: Option<Vec<String>>,
            #[serde(default)]
            payload: Option<Value>,
        }
        let claim = MercureClaim::deserialize(claim)
            .map_err(|e| GrantError(format!("`mercure` claim: {e}")))?;
        let selectors = |list: Option<Vec<String>>, publish: bool| -> Result<Grant, GrantError> {
            let list = list.unwrap_or_default();
            let name = if publish { "publish" } else { "subscribe" };
            let error = |reason: String| GrantError(format!("`mercure.{name}`: {reason}"));
            Ok(Grant {
                publish,
                subscribe: !publish,
                topics: matchers(
                    list.iter().map(|s| (MatchKind::Selector, s.as_str())),
                    list.len(),
                    base,
                )
                .map_err(error)?,
                payload: None,
            })
        };
        Ok(Rights {
            grants: vec![
                selectors(claim.publish, true)?,
                selectors(claim.subscribe, false)?,
            ],
            legacy_payload: claim.payload,
        })
    }
}

/// Details of other types belong to other APIs and are ignored, but every
/// entry must at least be an RFC 9396 detail: an object with a string `type`.
fn is_mercure_detail(detail: &Value) -> Result<bool, String> {
    match detail.get("type") {
        Some(Value::String(kind)) => Ok(kind == DETAIL_TYPE),
        _ => Err("not an object with a string `type`".into()),
    }
}

fn mercure_detail(detail: &Value, base: &Url) -> Result<Grant, String> {
    #[derive(Deserialize)]
    struct Detail {
        actions: Vec<String>,
        topics: Vec<TopicMatcher>,
        #[serde(default)]
        payload: Option<Map<String, Value>>,
    }
    #[derive(Deserialize)]
    struct TopicMatcher {
        #[serde(rename = "match")]
        source: String,
        #[serde(default)]
        match_type: Option<String>,
    }
    let detail = Detail::deserialize(detail).map_err(|e| e.to_string())?;
    if detail.actions.is_empty() {
        return Err("`actions` is empty".into());
    }
    if detail.topics.is_empty() {
        return Err("`topics` is empty".into());
    }
    let kinds = detail
        .topics
        .iter()
        .map(|topic| match topic.match_type.as_deref() {
            None => Ok(MatchKind::Exact),
            Some(name) => MatchKind::from_name(name)
                .ok_or_else(|| format!("unsupported `match_type` {name:?}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sources = kinds
        .into_iter()
        .zip(detail.topics.iter().map(|topic| topic.source.as_str()));
    // Unknown actions grant nothing but are no error: future specifications
    // may define more.
    let has = |action: &str| detail.actions.iter().any(|a| a == action);
    Ok(Grant {
        publish: has("publish"),
        subscribe: has("subscribe"),
        topics: matchers(sources, detail.topics.len(), base)?,
        payload: detail.payload.map(Value::Object),
    })
}

fn matchers<'a>(
    sources: impl Iterator<Item = (MatchKind, &'a str)>,
    count: usize,
    base: &Url,
) -> Result<Vec<Matcher>, String> {
    if count > MAX_TOPICS {
        return Err(format!("more than {MAX_TOPICS} topics"));
    }
    sources
        .map(|(kind, source)| {
            Matcher::parse(kind, source, base, MAX_MATCHER_LEN)
                .map_err(|e| format!("matcher {source:?} {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Url {
        Url::parse("https://hub.example.com/.well-known/mercure").unwrap()
    }

    fn detail(actions: Value, topics: Value) -> Value {
        json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics})
    }

    fn draft08(details: Value) -> Result<Grants, GrantError> {
        Ok(Grants {
            generation: Generation::Draft08,
            rights: Rights::from_authorization_details(&details, &base())?,
            ..Grants::anonymous()
        })
    }

    fn draft07(claim: Value) -> Result<Grants, GrantError> {
        Ok(Grants {
            generation: Generation::Draft07,
            rights: Rights::from_mercure_claim(&claim, &base())?,
            ..Grants::anonymous()
        })
    }

    #[test]
    fn anonymous_has_no_rights() {
        let grants = Grants::anonymous();
        assert!(!grants.may_publish("https://example.com/a"));
        assert!(!grants.may_read(["https://example.com/a", "*"]));
        assert!(grants.payload_for("*").is_none());
    }

    #[test]
    fn actions_apply_to_their_topics_only() {
        let grants = draft08(json!([
            detail(
                json!(["publish"]),
                json!([{"match": "https://example.com/books/1"}])
            ),
            detail(
                json!(["subscribe"]),
                json!([{"match": "https://example.com/books/:id", "match_type": "urlpattern"}])
            ),
        ]))
        .unwrap();
        assert!(grants.may_publish("https://example.com/books/1"));
        assert!(!grants.may_publish("https://example.com/books/2"));
        assert!(grants.may_subscribe_to("https://example.com/books/2"));
        assert!(!grants.may_subscribe_to("https://example.com/authors/2"));
    }

    #[test]
    fn exact_is_the_default_match_type() {
        let grants = draft08(json!([detail(
            json!(["subscribe"]),
            json!([{"match": "https://example.com/books/:id"}])
        )]))
        .unwrap();
        assert!(!grants.may_subscribe_to("https://example.com/books/1"));
        assert!(grants.may_subscribe_to("https://example.com/books/:id"));
    }

    #[test]
    fn one_granted_topic_is_enough_to_read() {
        let grants = draft08(json!([detail(
            json!(["subscribe"]),
            json!([{"match": "https://example.com/users/42/*", "match_type": "urlpattern"}])
        )]))
        .unwrap();
        assert!(grants.may_read([
            "https://example.com/books/1",
            "https://example.com/users/42/books/1",
        ]));
        assert!(!grants.may_read(["https://example.com/books/1"]));
        assert!(!grants.may_read([]));
    }

    #[test]
    fn unknown_actions_are_ignored() {
        let grants = draft08(json!([detail(
            json!(["read-minds", "subscribe"]),
            json!([{"match": "*"}])
        )]))
        .unwrap();
        assert!(grants.may_subscribe_to("anything"));
        assert!(!grants.may_publish("anything"));
        let nothing = draft08(json!([detail(
            json!(["read-minds"]),
            json!([{"match": "*"}])
        )]))
        .unwrap();
        assert!(!nothing.may_subscribe_to("anything"));
    }

    #[test]
    fn other_detail_types_are_ignored() {
        let grants = draft08(json!([
            {"type": "payment_initiation", "actions": 42},
            detail(json!(["publish"]), json!([{"match": "*"}])),
        ]))
        .unwrap();
        assert!(grants.may_publish("x"));
    }

    #[test]
    fn any_bad_detail_refuses_the_whole_token() {
        let good = detail(json!(["publish"]), json!([{"match": "*"}]));
        for bad in [
            detail(json!(["publish", 7]), json!([{"match": "*"}])),
            detail(json!([]), json!([{"match": "*"}])),
            detail(json!("publish"), json!([{"match": "*"}])),
            detail(json!(["publish"]), json!([])),
            detail(json!(["publish"]), json!(["*"])),
            detail(json!(["publish"]), json!([{"match": 1}])),
            detail(
                json!(["publish"]),
                json!([{"match": "x", "match_type": "regex"}]),
            ),
            detail(
                json!(["publish"]),
                json!([{"match": "x", "match_type": "Exact"}]),
            ),
            detail(json!(["publish"]), json!([{"match": "x", "match_type": 3}])),
            detail(
                json!(["publish"]),
                json!([{"match": "(", "match_type": "urlpattern"}]),
            ),
            detail(json!(["publish"]), json!([{"match": "a\nb"}])),
            json!({"type": DETAIL_TYPE, "actions": ["publish"]}),
            json!({"type": DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}], "payload": "x"}),
            json!("not an object"),
            json!({"no": "type"}),
        ] {
            assert!(
                draft08(json!([good.clone(), bad.clone()])).is_err(),
                "{bad}"
            );
        }
        assert!(draft08(json!({"not": "an array"})).is_err());
    }

    #[test]
    fn limits_refuse_the_token() {
        let one = detail(json!(["subscribe"]), json!([{"match": "*"}]));
        assert!(draft08(Value::Array(vec![one.clone(); MAX_DETAILS])).is_ok());
        assert!(draft08(Value::Array(vec![one; MAX_DETAILS + 1])).is_err());
        let topics = |n: usize| Value::Array(vec![json!({"match": "https://example.com/t"}); n]);
        assert!(draft08(json!([detail(json!(["subscribe"]), topics(MAX_TOPICS))])).is_ok());
        assert!(draft08(json!([detail(
            json!(["subscribe"]),
            topics(MAX_TOPICS + 1)
        )]))
        .is_err());
        let long = "x".repeat(MAX_MATCHER_LEN + 1);
        assert!(draft08(json!([detail(
            json!(["subscribe"]),
            json!([{"match": long}])
        )]))
        .is_err());
    }

    #[test]
    fn payload_of_the_first_matching_subscribe_detail() {
        let grants = draft08(json!([
            detail(json!(["publish"]), json!([{"match": "*"}])),
            {"type": DETAIL_TYPE, "actions": ["subscribe"],
             "topics": [{"match": "https://example.com/foo"}], "payload": {"custom1": 1}},
            {"type": DETAIL_TYPE, "actions": ["subscribe"],
             "topics": [{"match": "https://example.com/bar/:id", "match_type": "urlpattern"}],
             "payload": {"custom2": 2}},
            {"type": DETAIL_TYPE, "actions": ["subscribe"],
             "topics": [{"match": "*"}], "payload": {"custom3": 3}},
            {"type": DETAIL_TYPE, "actions": ["subscribe"],
             "topics": [{"match": "https://example.com/late"}], "payload": {"masked": true}},
        ]))
        .unwrap();
        assert_eq!(
            grants.payload_for("https://example.com/foo"),
            Some(&json!({"custom1": 1}))
        );
        assert_eq!(
            grants.payload_for("https://example.com/bar/:id"),
            Some(&json!({"custom2": 2}))
        );
        assert_eq!(
            grants.payload_for("https://example.com/bar/7"),
            Some(&json!({"custom2": 2}))
        );
        assert_eq!(
            grants.payload_for("https://example.com/late"),
            Some(&json!({"custom3": 3}))
        );
        assert_eq!(
            grants.payload_for("urn:other"),
            Some(&json!({"custom3": 3}))
        );
    }

    #[test]
    fn first_match_without_payload_means_no_payload() {
        let grants = draft08(json!([
            detail(json!(["subscribe"]), json!([{"match": "https://example.com/a"}])),
            {"type": DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}], "payload": {"d": 1}},
        ]))
        .unwrap();
        assert_eq!(grants.payload_for("https://example.com/a"), None);
        assert_eq!(
            grants.payload_for("https://example.com/b"),
            Some(&json!({"d": 1}))
        );
    }

    #[test]
    fn draft07_selectors_and_payload() {
        let grants = draft07(json!({
            "publish": ["https://example.com/books/{id}", "urn:exact"],
            "subscribe": ["https://example.com/users/foo/{?topic}"],
            "payload": ["any", "json"]
        }))
        .unwrap();
        assert!(grants.may_publish("urn:exact"));
        assert!(grants.may_publish("https://example.com/books/{id}"));
        assert!(!grants.may_publish("https://example.com/authors/1"));
        assert!(!grants.may_subscribe_to("urn:exact"));
        assert_eq!(
            grants.payload_for("whatever"),
            Some(&json!(["any", "json"]))
        );
    }

    #[test]
    fn draft07_templates_match_topics() {
        let grants = draft07(json!({
            "publish": ["https://example.com/books/{id}"],
            "subscribe": ["https://example.com/users/foo/{?topic}"]
        }))
        .unwrap();
        assert!(grants.may_publish("https://example.com/books/1"));
        assert!(!grants.may_publish("https://example.com/books/1/2"));
        assert!(grants.may_read([
            "https://example.com/books/1",
            "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
        ]));
    }

    #[test]
    fn draft07_star_and_missing_lists() {
        let grants = draft07(json!({"subscribe": ["*"]})).unwrap();
        assert!(grants.may_subscribe_to("anything"));
        assert!(!grants.may_publish("anything"));
        assert_eq!(grants.payload_for("x"), None);
        assert!(!draft07(json!({})).unwrap().may_subscribe_to("x"));
    }

    #[test]
    fn draft07_bad_claims_refuse_the_token() {
        for bad in [
            json!("publish"),
            json!({"publish": "*"}),
            json!({"subscribe": ["ok", 1]}),
            json!({"subscribe": vec!["*"; MAX_TOPICS + 1]}),
        ] {
            assert!(draft07(bad.clone()).is_err(), "{bad}");
        }
    }
}

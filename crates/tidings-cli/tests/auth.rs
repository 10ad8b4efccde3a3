//! Authorization over real HTTP: both token generations, every way of
//! presenting a token, the exact challenges, and private updates.

mod support;

use std::time::Duration;
use support::{client, opened, token, Hub, Stream};
use tidings::auth::{Generation, Role};

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn publish_challenges_follow_the_spec() {
    let hub = Hub::start(&[]);
    let metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/.well-known/mercure\"",
        hub.origin
    );
    let post = |auth: Option<String>| {
        let mut request = client()
            .post(&hub.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("topic=https%3A%2F%2Fexample.com%2Fa&data=x");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let missing = post(None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(challenge(&missing), format!("Bearer {metadata}"));

    let invalid = post(Some("Bearer not.a.token".into())).await.unwrap();
    assert_eq!(invalid.status(), 401);
    assert!(
        challenge(&invalid).contains("error=\"invalid_token\""),
        "{}",
        challenge(&invalid)
    );
    assert!(challenge(&invalid).contains(&metadata));

    let narrow = token(
        Generation::Draft08,
        Role::Publisher,
        &["https://example.com/b"],
        &hub.url,
        None,
    );
    let forbidden = post(Some(format!("Bearer {narrow}"))).await.unwrap();
    assert_eq!(forbidden.status(), 403);
    assert!(challenge(&forbidden).contains("error=\"insufficient_scope\""));

    let malformed = post(Some("Basic dXNlcjpwYXNz".into())).await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(challenge(&malformed).contains("error=\"invalid_request\""));

    let subscriber_only = token(
        Generation::Draft08,
        Role::Subscriber,
        &["*"],
        &hub.url,
        None,
    );
    let wrong_action = post(Some(format!("Bearer {subscriber_only}")))
        .await
        .unwrap();
    assert_eq!(wrong_action.status(), 403);
}

#[tokio::test]
async fn publish_needs_every_topic_granted() {
    let hub = Hub::start(&[]);
    let narrow = token(
        Generation::Draft08,
        Role::Publisher,
        &["https://example.com/a"],
        &hub.url,
        None,
    );
    let form = [
        ("topic", "https://example.com/a"),
        ("topic", "https://example.com/b"),
        ("data", "x"),
    ];
    assert_eq!(hub.post(Some(&narrow), &form).await.0, 403);
    assert_eq!(hub.post(Some(&narrow), &form[..1]).await.0, 200);
}

#[tokio::test]
async fn draft07_tokens_and_templates_work_side_by_side_with_draft08() {
    let hub = Hub::start(&[]);
    let legacy = token(
        Generation::Draft07,
        Role::Publisher,
        &["https://example.com/books/{id}"],
        &hub.url,
        None,
    );
    let mut modern =
        opened(&hub.subscribe_url("match=https%3A%2F%2Fexample.com%2Fbooks%2F1")).await;
    let mut old =
        opened(&hub.subscribe_url("topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D")).await;
    let (status, _) = hub
        .post(
            Some(&legacy),
            &[("topic", "https://example.com/books/1"), ("data", "d7")],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = hub
        .post(Some(&legacy), &[("topic", "https://example.com/authors/1")])
        .await;
    assert_eq!(status, 403);
    assert_eq!(modern.next().await.data, "d7");
    assert_eq!(old.next().await.data, "d7");
}

#[tokio::test]
async fn legacy_generation_can_be_turned_off() {
    let hub = Hub::start(&["--legacy=false"]);
    let legacy = token(Generation::Draft07, Role::Publisher, &["*"], &hub.url, None);
    assert_eq!(hub.post(Some(&legacy), &[("topic", "t")]).await.0, 401);
    let response = reqwest::get(hub.subscribe_url("topic=t")).await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn private_updates_reach_only_authorized_subscribers() {
    let hub = Hub::start(&[]);
    let topic = "https://example.com/books/1";
    let query = "match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid";
    let mut anonymous = opened(&hub.subscribe_url(query)).await;
    let reader = hub.subscriber_token(&[topic]);
    let auth = format!("Bearer {reader}");
    let mut authorized = Stream::open(&hub.subscribe_url(query), &[("authorization", &auth)]).await;
    authorized.wait_registered().await;
    let other = hub.subscriber_token(&["https://example.com/books/2"]);
    let other_auth = format!("Bearer {other}");
    let mut unrelated =
        Stream::open(&hub.subscribe_url(query), &[("authorization", &other_auth)]).await;
    unrelated.wait_registered().await;
    let publisher = hub.publisher_token();
    hub.post(
        Some(&publisher),
        &[("topic", topic), ("data", "secret"), ("private", "on")],
    )
    .await;
    // An alternate topic the second reader is granted lets it read too.
    let alt = [
        ("topic", "https://example.com/books/3"),
        ("topic", "https://example.com/books/2"),
        ("data", "via alternate"),
        ("private", ""),
    ];
    hub.post(Some(&publisher), &alt).await;
    hub.post(Some(&publisher), &[("topic", topic), ("data", "public")])
        .await;
    assert_eq!(authorized.next().await.data, "secret");
    assert_eq!(authorized.next().await.data, "public");
    assert_eq!(unrelated.next().await.data, "via alternate");
    assert_eq!(unrelated.next().await.data, "public");
    assert_eq!(anonymous.next().await.data, "public");
}

#[tokio::test]
async fn private_updates_stay_private_on_replay() {
    let hub = Hub::start(&[]);
    let publisher = hub.publisher_token();
    hub.post(
        Some(&publisher),
        &[("topic", "t"), ("data", "secret"), ("private", "on")],
    )
    .await;
    hub.post(Some(&publisher), &[("topic", "t"), ("data", "public")])
        .await;
    let mut anonymous =
        Stream::open(&hub.subscribe_url("match=t&last_event_id=earliest"), &[]).await;
    assert_eq!(anonymous.next().await.data, "public");
    let reader = format!("Bearer {}", hub.subscriber_token(&["t"]));
    let mut authorized = Stream::open(
        &hub.subscribe_url("match=t&last_event_id=earliest"),
        &[("authorization", &reader)],
    )
    .await;
    assert_eq!(authorized.next().await.data, "secret");
    assert_eq!(authorized.next().await.data, "public");
}

#[tokio::test]
async fn cookies_carry_tokens_and_the_header_wins() {
    let hub = Hub::start(&[]);
    let reader = hub.subscriber_token(&["t"]);
    let publisher = hub.publisher_token();
    for name in ["__Secure-mercure_access_token", "mercureAuthorization"] {
        let cookie = format!("{name}={reader}");
        let mut stream = Stream::open(&hub.subscribe_url("match=t"), &[("cookie", &cookie)]).await;
        stream.wait_registered().await;
        hub.post(
            Some(&publisher),
            &[("topic", "t"), ("data", name), ("private", "on")],
        )
        .await;
        assert_eq!(stream.next().await.data, name);
    }
    let bad_cookie = "__Secure-mercure_access_token=garbage".to_string();
    let good_header = format!("Bearer {reader}");
    let with_header = Stream::open(
        &hub.subscribe_url("match=t"),
        &[("cookie", &bad_cookie), ("authorization", &good_header)],
    )
    .await;
    assert_eq!(with_header.status, 200);
    let good_cookie = format!("__Secure-mercure_access_token={reader}");
    let bad_header = Stream::open(
        &hub.subscribe_url("match=t"),
        &[
            ("cookie", &good_cookie),
            ("authorization", "Bearer garbage"),
        ],
    )
    .await;
    assert_eq!(bad_header.status, 401);
}

#[tokio::test]
async fn cookie_publications_are_checked_against_csrf() {
    let hub = Hub::start(&[]);
    let cookie = format!("__Secure-mercure_access_token={}", hub.publisher_token());
    let post = |origin: Option<&str>| {
        let mut request = client()
            .post(&hub.url)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("topic=t&data=x");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 403);
    assert_eq!(
        post(Some("https://evil.example")).await.unwrap().status(),
        403
    );
    assert_eq!(post(Some(&hub.origin)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_query_token_is_accepted_only_when_enabled() {
    let off = Hub::start(&[]);
    let reader = off.subscriber_token(&["t"]);
    let mut stream = opened(&off.subscribe_url(&format!("match=t&authorization={reader}"))).await;
    off.post(
        Some(&off.publisher_token()),
        &[("topic", "t"), ("data", "hidden"), ("private", "on")],
    )
    .await;
    off.publish("t", "shown").await;
    assert_eq!(stream.next().await.data, "shown");

    let on = Hub::start(&["--legacy-query-token"]);
    let reader = on.subscriber_token(&["t"]);
    let mut stream = opened(&on.subscribe_url(&format!("topic=t&authorization={reader}"))).await;
    on.post(
        Some(&on.publisher_token()),
        &[("topic", "t"), ("data", "private"), ("private", "on")],
    )
    .await;
    assert_eq!(stream.next().await.data, "private");
}

#[tokio::test]
async fn a_hub_can_require_subscriber_tokens() {
    let hub = Hub::start(&["--anonymous=false"]);
    let response = reqwest::get(hub.subscribe_url("match=t")).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).starts_with("Bearer resource_metadata="));
    let reader = format!("Bearer {}", hub.subscriber_token(&["t"]));
    let stream = Stream::open(&hub.subscribe_url("match=t"), &[("authorization", &reader)]).await;
    assert_eq!(stream.status, 200);
}

#[tokio::test]
async fn tokens_for_another_hub_are_refused() {
    let hub = Hub::start(&[]);
    let foreign = token(
        Generation::Draft08,
        Role::Publisher,
        &["*"],
        "https://other.example/.well-known/mercure",
        None,
    );
    assert_eq!(hub.post(Some(&foreign), &[("topic", "t")]).await.0, 401);
}

#[tokio::test]
async fn streams_close_at_token_expiry_and_at_the_maximum_lifetime() {
    let hub = Hub::start(&[]);
    let short = token(
        Generation::Draft08,
        Role::Subscriber,
        &["t"],
        &hub.url,
        Some(Duration::from_secs(2)),
    );
    let auth = format!("Bearer {short}");
    let mut expiring =
        Stream::open(&hub.subscribe_url("match=t"), &[("authorization", &auth)]).await;
    assert_eq!(expiring.status, 200);
    assert!(
        expiring.ends_within(Duration::from_secs(5)).await,
        "stream outlived its token"
    );

    let capped = Hub::start(&["--max-lifetime", "1s"]);
    let mut stream = Stream::open(&capped.subscribe_url("match=t"), &[]).await;
    assert!(
        stream.ends_within(Duration::from_secs(4)).await,
        "stream outlived --max-lifetime"
    );
}

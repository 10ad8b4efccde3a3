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

/// The PEM key fixtures of the library's tests.
fn key_fixture(name: &str) -> String {
    let path = format!(
        "{}/../tidings/tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Serves `document` as a JWK Set to every request, on loopback.
async fn serve_jwks(document: serde_json::Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let body = document.to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    url
}

/// The claims of a valid token of this hub (minted with the test secret),
/// to be signed again in hostile ways.
fn valid_claims(role: Role, hub: &Hub) -> serde_json::Value {
    let minted = token(Generation::Draft08, role, &["*"], &hub.url, None);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(
        &minted,
        &jsonwebtoken::DecodingKey::from_secret(support::SECRET.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims
}

fn at_jwt(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Header {
    jsonwebtoken::Header {
        typ: Some("at+jwt".into()),
        ..jsonwebtoken::Header::new(alg)
    }
}

fn signed(
    header: &jsonwebtoken::Header,
    claims: &serde_json::Value,
    key: &jsonwebtoken::EncodingKey,
) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// An unsigned token, which jsonwebtoken refuses to produce.
fn unsigned(alg: &str, claims: &serde_json::Value) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let part = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.",
        part(serde_json::json!({"alg": alg, "typ": "at+jwt"})),
        part(claims.clone())
    )
}

/// Over real HTTP, the forgeries a hub facing strangers must refuse: an
/// unsigned token (`alg: none` in any case), an HMAC token keyed with the
/// hub's RSA public key, a token signed by a key it carries itself (`jwk`,
/// `jku`, `x5u`), and a token naming a `kid` the JWK Set does not hold or
/// signed by another key under a known `kid`. Each gets 401, and a refused
/// publication reaches no subscriber.
// Two threads: the JWK Set server answers while the hub starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tokens_are_refused_over_http() {
    use jsonwebtoken::{jwk::Jwk, Algorithm, EncodingKey};
    let dir = tempfile::tempdir().unwrap();
    let public_pem = key_fixture("rsa.pub.pem");
    let public_path = dir.path().join("rsa.pub.pem");
    std::fs::write(&public_path, &public_pem).unwrap();
    let trusted = EncodingKey::from_ec_pem(key_fixture("ec.pem").as_bytes()).unwrap();
    let attacker = EncodingKey::from_ec_pem(key_fixture("ec2.pem").as_bytes()).unwrap();
    let mut trusted_jwk = Jwk::from_encoding_key(&trusted, Algorithm::ES256).unwrap();
    trusted_jwk.common.key_id = Some("one".into());
    let jwks = serve_jwks(serde_json::json!({ "keys": [trusted_jwk] })).await;
    let hub = Hub::start_with(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--publisher-jwt-key-file",
        public_path.to_str().unwrap(),
        "--jwks-url",
        &jwks,
        "--anonymous",
        "false",
        "--log",
        "warn",
    ]);

    // Publishers: the hub trusts one RSA public key (and the JWK Set).
    let claims = valid_claims(Role::Publisher, &hub);
    let rsa = EncodingKey::from_rsa_pem(key_fixture("rsa.pem").as_bytes()).unwrap();
    let genuine = signed(&at_jwt(Algorithm::RS256), &claims, &rsa);
    let mut carried = at_jwt(Algorithm::ES256);
    carried.jwk = Some(Jwk::from_encoding_key(&attacker, Algorithm::ES256).unwrap());
    carried.jku = Some("https://attacker.example/jwks".into());
    carried.x5u = Some("https://attacker.example/cert".into());
    let forgeries = [
        ("alg none", unsigned("none", &claims)),
        ("alg None", unsigned("None", &claims)),
        ("alg NONE", unsigned("NONE", &claims)),
        (
            "HMAC keyed with the RSA public key",
            signed(
                &at_jwt(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(public_pem.as_bytes()),
            ),
        ),
        (
            "key carried in the token",
            signed(&carried, &claims, &attacker),
        ),
    ];

    // Subscribers: the hub trusts the JWK Set's key "one".
    let sub_claims = valid_claims(Role::Subscriber, &hub);
    let with_kid = |kid: &str| {
        let mut header = at_jwt(Algorithm::ES256);
        header.kid = Some(kid.into());
        header
    };
    let reader = signed(&with_kid("one"), &sub_claims, &trusted);
    let mut watcher = Stream::open(
        &hub.subscribe_url("match=https%3A%2F%2Fexample.com%2Fhostile"),
        &[("authorization", &format!("Bearer {reader}"))],
    )
    .await;
    assert_eq!(watcher.status, 200, "the genuine subscriber token");
    watcher.wait_registered().await;
    for (kid, key, what) in [
        ("missing", &attacker, "a kid the JWK Set does not hold"),
        ("missing", &trusted, "the right key under an unknown kid"),
        ("one", &attacker, "another key under a known kid"),
    ] {
        let forged = signed(&with_kid(kid), &sub_claims, key);
        let stream = Stream::open(
            &hub.subscribe_url("match=https%3A%2F%2Fexample.com%2Fhostile"),
            &[("authorization", &format!("Bearer {forged}"))],
        )
        .await;
        assert_eq!(stream.status, 401, "{what}");
    }
    let hostile = [("topic", "https://example.com/hostile"), ("data", "forged")];
    for (what, forged) in forgeries {
        assert_eq!(hub.post(Some(&forged), &hostile).await.0, 401, "{what}");
    }
    let (status, _) = hub
        .post(
            Some(&genuine),
            &[
                ("topic", "https://example.com/hostile"),
                ("data", "genuine"),
            ],
        )
        .await;
    assert_eq!(status, 200, "the genuine publisher token");
    let first = watcher
        .next_within(Duration::from_secs(5))
        .await
        .expect("an event");
    assert_eq!(first.data, "genuine", "a refused publication was delivered");
}

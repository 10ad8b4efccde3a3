//! The publish form decoder and its validation (`form.rs`, `publish.rs`):
//! the body of a `POST` to the hub, as the publish endpoint reads it.
//!
//! Checked: no panic; the decoder refuses what is not valid UTF-8 rather
//! than altering it; an accepted update passes validation again, stays
//! out of the hub's reserved namespace, and survives being written back
//! as a form and read again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::auth::AuthConfig;
use tidings::fuzzing::form_pairs;
use tidings::publish::{check, parse_form};
use tidings::{HubConfig, Update};
use url::form_urlencoded;
use url::Url;

fuzz_target!(|body: &[u8]| {
    // Every pair, as decoded, is what the bytes say: `+` is a space and
    // `%XX` the octet, nothing replaced.
    if let Ok(pairs) = form_pairs(body) {
        let lossy: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        assert_eq!(pairs, lossy, "the strict decoder disagrees with WHATWG's");
    }

    let config = config();
    let Ok(update) = parse_form(body, &config) else {
        return;
    };
    check(&update, &config).expect("an accepted update passes validation again");
    for topic in &update.topics {
        let resolved = config.url.join(topic).ok();
        let path = resolved.as_ref().map_or("", Url::path);
        assert!(
            path != "/.well-known/mercure" && !path.starts_with("/.well-known/mercure/"),
            "accepted topic {topic:?} names the hub's own namespace"
        );
    }
    let again = parse_form(as_form(&update).as_bytes(), &config)
        .expect("an accepted update, written back as a form, is accepted");
    assert_eq!(again, update);
});

fn config() -> HubConfig {
    let url = Url::parse("https://hub.example.com/.well-known/mercure").unwrap();
    HubConfig::new(url, AuthConfig::default())
}

fn as_form(update: &Update) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for topic in &update.topics {
        form.append_pair("topic", topic);
    }
    form.append_pair("data", &update.data);
    if update.private {
        form.append_key_only("private");
    }
    if let Some(id) = &update.id {
        form.append_pair("id", id);
    }
    if let Some(kind) = &update.kind {
        form.append_pair("type", kind);
    }
    if let Some(retry) = update.retry {
        form.append_pair("retry", &retry.to_string());
    }
    form.finish()
}

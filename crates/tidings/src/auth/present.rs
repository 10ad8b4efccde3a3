//! Finding the token a request presents.
//!
//! Precedence: the `Authorization: Bearer` header, which explicitly chose
//! this request's credentials; then, only when enabled, the draft-07
//! `authorization` query parameter, which draft-07 ranks above the cookie
//! for the same reason; then the cookie, an ambient credential the user
//! agent attaches on its own (`__Secure-mercure_access_token`, or the
//! draft-07 `mercureAuthorization`). A cookie alongside a header is not a
//! client error: it is ignored.

use super::config::AuthConfig;
use super::AuthError;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};
use std::borrow::Cow;

/// The cookie names tried, in order.
const COOKIES: [&str; 2] = ["__Secure-mercure_access_token", "mercureAuthorization"];

/// Finds the presented token; `query_token` is the value of the request's
/// `authorization` query parameter, if any. `Ok(None)` means no token.
pub fn presented_token<'a>(
    headers: &'a HeaderMap,
    query_token: Option<&'a str>,
    config: &AuthConfig,
) -> Result<Option<Cow<'a, str>>, AuthError> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(invalid("several Authorization headers"));
        }
        return bearer(value).map(|token| Some(Cow::Borrowed(token)));
    }
    if config.query_token {
        if let Some(token) = query_token.filter(|token| !token.is_empty()) {
            return Ok(Some(Cow::Borrowed(token)));
        }
    }
    Ok(COOKIES
        .iter()
        .find_map(|name| cookie(headers, name))
        .map(Cow::Borrowed))
}

fn invalid(reason: &str) -> AuthError {
    AuthError::InvalidRequest(reason.to_owned())
}

/// The token of an RFC 6750 `Bearer` credential; the scheme is
/// case-insensitive, the token must be a `b64token`.
fn bearer(value: &HeaderValue) -> Result<&str, AuthError> {
    let value = value
        .to_str()
        .map_err(|_| invalid("the Authorization header is not visible ASCII"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| invalid("the Authorization header is not `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(invalid("the Authorization scheme is not Bearer"));
    }
    let token = token.trim_matches(' ');
    if !is_b64token(token) {
        return Err(invalid("the bearer token is empty or malformed"));
    }
    Ok(token)
}

fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The first non-empty value of cookie `name` across all `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| unquote(value.trim()))
        })
        .filter(|value| !value.is_empty())
}

/// RFC 6265 allows a cookie value in double quotes.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn found(
        pairs: &[(&str, &str)],
        query: Option<&str>,
        query_enabled: bool,
    ) -> Result<Option<String>, AuthError> {
        let config = AuthConfig {
            query_token: query_enabled,
            ..AuthConfig::default()
        };
        let map = headers(pairs);
        presented_token(&map, query, &config).map(|token| token.map(Cow::into_owned))
    }

    fn some(token: &str) -> Result<Option<String>, AuthError> {
        Ok(Some(token.to_owned()))
    }

    #[test]
    fn header_wins_over_everything() {
        let all = [
            ("authorization", "Bearer header.token.x"),
            ("cookie", "__Secure-mercure_access_token=cookie.token.x"),
        ];
        assert_eq!(
            found(&all, Some("query.token.x"), true),
            some("header.token.x")
        );
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            let value = format!("{scheme} a.b.c");
            assert_eq!(
                found(&[("authorization", &value)], None, false),
                some("a.b.c")
            );
        }
        assert_eq!(
            found(&[("authorization", "Bearer   a.b-_~+/c==")], None, false),
            some("a.b-_~+/c==")
        );
    }

    #[test]
    fn malformed_authorization_is_an_invalid_request() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer ==",
            "Bearer=a",
            "Token a.b.c",
        ] {
            assert!(
                matches!(
                    found(&[("authorization", value)], None, false),
                    Err(AuthError::InvalidRequest(_))
                ),
                "{value}"
            );
        }
        let twice = [("authorization", "Bearer a"), ("authorization", "Bearer b")];
        assert!(matches!(
            found(&twice, None, false),
            Err(AuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn cookie_when_no_header() {
        let cookies = [(
            "cookie",
            "theme=dark; mercureAuthorization=legacy.t.x; __Secure-mercure_access_token=new.t.x",
        )];
        assert_eq!(found(&cookies, None, false), some("new.t.x"));
        let legacy = [
            ("cookie", "a=b"),
            ("cookie", "mercureAuthorization=\"legacy.t.x\""),
        ];
        assert_eq!(found(&legacy, None, false), some("legacy.t.x"));
        let empty = [(
            "cookie",
            "__Secure-mercure_access_token=; mercureAuthorization=l.t.x",
        )];
        assert_eq!(found(&empty, None, false), some("l.t.x"));
        assert_eq!(found(&[("cookie", "other=x")], None, false), Ok(None));
    }

    #[test]
    fn query_parameter_only_when_enabled() {
        let cookie = [("cookie", "mercureAuthorization=cookie.t.x")];
        assert_eq!(found(&[], Some("query.t.x"), false), Ok(None));
        assert_eq!(found(&cookie, Some("query.t.x"), false), some("cookie.t.x"));
        assert_eq!(found(&[], Some("query.t.x"), true), some("query.t.x"));
        // Draft-07: the query parameter is used and the cookie ignored.
        assert_eq!(found(&cookie, Some("query.t.x"), true), some("query.t.x"));
        assert_eq!(found(&cookie, Some(""), true), some("cookie.t.x"));
    }

    #[test]
    fn nothing_presented() {
        assert_eq!(found(&[], None, true), Ok(None));
    }
}

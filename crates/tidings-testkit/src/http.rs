//! A bare HTTP GET over a std TCP stream, enough to read the NATS monitoring endpoints.

use std::io::{Read, Write};

use crate::port;

/// GETs `path` from 127.0.0.1:`port`; the status code and body, or None when
/// the server does not answer.
pub(crate) fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = port::connect(port)?;
    // HTTP/1.0 makes the server close after the response, so the body is the
    // rest of the stream: no chunked encoding or Content-Length to follow.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

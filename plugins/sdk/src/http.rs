//! Outbound HTTP for plugins whose manifest grants it (feature `http`): a
//! small blocking client over the standard `wasi:http` outgoing interface.
//!
//! Wicket links `wasi:http` only for plugins with an `[outbound]` table in
//! their manifest and refuses, inside the host, every request to a host:port
//! that table does not list; such a request fails here with
//! `HttpRequestDenied`. Each request also has the manifest's timeout and
//! response cap, and the plugin's own deadline bounds the whole review.
//!
//! [`send_all`] starts every request before waiting for any, so asking five
//! servers costs about as long as asking the slowest one.
//!
//! ```no_run
//! use wicket_sdk::http::{self, Request};
//!
//! # fn main() -> Result<(), http::HttpError> {
//! let status: serde_json::Value = http::send(Request::post("http://127.0.0.2:2379/v3/maintenance/status").json(&serde_json::json!({})))?
//!     .json()?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme, http_error_code,
};
use wasip2::io::streams::StreamError;

/// Bytes written to a request body per call (`wasi:io` guarantees 4096).
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per read of a response body.
const READ_CHUNK: u64 = 64 * 1024;

/// An HTTP request to send.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl Request {
    /// A `GET` of `url` (`http://host:port/path?query` or `https://...`).
    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::Get, url.into())
    }

    /// A `POST` to `url`, empty until [`Request::json`] or [`Request::body`].
    pub fn post(url: impl Into<String>) -> Request {
        Request::new(Method::Post, url.into())
    }

    fn new(method: Method, url: String) -> Request {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body to `value` as JSON, with its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Request {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Caps connecting and waiting for the response at `timeout` (the
    /// manifest's `outbound.timeout-ms` still applies if it is shorter).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }
}

/// A response: its status and whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, read to the end.
    pub body: Vec<u8>,
}

impl Response {
    /// The body parsed as JSON; a status other than 2xx is an error that
    /// quotes the start of the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        if !(200..300).contains(&self.status) {
            let start =
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned();
            return Err(HttpError(format!("HTTP {}: {start}", self.status)));
        }
        serde_json::from_slice(&self.body)
            .map_err(|error| HttpError(format!("the response is not the JSON expected: {error}")))
    }
}

/// Why a request got no response: refused by Wicket's allow-list
/// (`HttpRequestDenied`), unreachable, timed out, too large, malformed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl From<ErrorCode> for HttpError {
    fn from(code: ErrorCode) -> HttpError {
        let text = format!("{code:?}");
        HttpError(text.trim_start_matches("ErrorCode::").to_owned())
    }
}

/// Sends one request and reads the whole response.
pub fn send(request: Request) -> Result<Response, HttpError> {
    start(&request).and_then(finish)
}

/// Sends every request at once, then reads each response; the results are
/// in the order of `requests`.
pub fn send_all(requests: Vec<Request>) -> Vec<Result<Response, HttpError>> {
    let started: Vec<_> = requests.iter().map(start).collect();
    started
        .into_iter()
        .map(|started| started.and_then(finish))
        .collect()
}

/// Hands the request to the host (which starts it at once) and writes its body.
fn start(request: &Request) -> Result<FutureIncomingResponse, HttpError> {
    let bad_url = || HttpError(format!("not an http(s) URL: {}", request.url));
    let (scheme, rest) = request.url.split_once("://").ok_or_else(bad_url)?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(bad_url()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let headers = Fields::from_list(&request.headers)
        .map_err(|error| HttpError(format!("bad header: {error:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    let refused = |what: &str| HttpError(format!("the request's {what} was refused"));
    outgoing
        .set_method(&request.method)
        .map_err(|()| refused("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| refused("path"))?;
    let body = outgoing.body().map_err(|()| refused("body"))?;
    let options = request.timeout.map(|timeout| {
        let options = RequestOptions::new();
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // A host that does not support a timeout keeps its own.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });
    let pending = outgoing_handler::handle(outgoing, options)?;
    if let Err(write_error) = write_body(body, &request.body) {
        // A request the host refused or failed has no one reading its body;
        // the response's error says why.
        return Err(match wait(&pending) {
            Err(error) => error,
            Ok(_) => write_error,
        });
    }
    Ok(pending)
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        let stream = body
            .write()
            .map_err(|()| HttpError("the request body stream was already taken".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|error| HttpError(format!("writing the body: {}", stream_error(error))))?;
        }
    }
    Ok(OutgoingBody::finish(body, None)?)
}

/// Blocks until the response (or the reason there is none) arrives.
fn wait(pending: &FutureIncomingResponse) -> Result<IncomingResponse, HttpError> {
    loop {
        match pending.get() {
            Some(Ok(response)) => return Ok(response?),
            Some(Err(())) => return Err(HttpError("the response was already taken".into())),
            None => pending.subscribe().block(),
        }
    }
}

/// A stream error as the `wasi:http` error code behind it, when there is one.
fn stream_error(error: StreamError) -> String {
    match error {
        StreamError::Closed => "the stream was closed".to_owned(),
        StreamError::LastOperationFailed(error) => match http_error_code(&error) {
            Some(code) => HttpError::from(code).0,
            None => error.to_debug_string(),
        },
    }
}

/// Waits for the response and reads its body to the end.
fn finish(pending: FutureIncomingResponse) -> Result<Response, HttpError> {
    let response = wait(&pending)?;
    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| HttpError("the response body was already taken".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| HttpError("the response body stream was already taken".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(error) => {
                    return Err(HttpError(format!(
                        "reading the response: {}",
                        stream_error(error)
                    )));
                }
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok(Response {
        status,
        body: bytes,
    })
}

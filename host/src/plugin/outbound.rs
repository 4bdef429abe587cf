//! Outbound HTTP for plugins that are granted it: the `wasi:http` hooks that
//! enforce the manifest's grant ([`super::grant`]) with a per-call timeout and
//! a cap on the response size, and the grant's TLS files, loaded.
//!
//! A request to a host:port that is not on the list is refused inside the
//! host, before any name lookup or connection, and the refusal is logged; the
//! plugin sees `wasi:http`'s `HTTP-request-denied` error. A plugin whose
//! manifest grants nothing does not get `wasi:http` linked at all (see
//! [`super::Runtime`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use http_body_util::BodyExt;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode as P2ErrorCode;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::grant::Outbound;
use super::tag::LogTag;
use super::tls_client::{ClientTls, Io, TlsFilesError};

/// A plugin's grant with its TLS files loaded: what its instances send with.
pub struct Access {
    grant: Arc<Outbound>,
    client_tls: Option<ClientTls>,
}

impl Access {
    /// Reads the TLS files `grant` names (once per plugin load: a rotated
    /// certificate is picked up when the plugin is next reloaded).
    pub fn load(grant: Arc<Outbound>) -> Result<Access, TlsFilesError> {
        let client_tls = grant.tls.clone().map(ClientTls::load).transpose()?;
        Ok(Access { grant, client_tls })
    }
}

/// The `wasi:http` hooks of one plugin instance: the allow-list check and
/// the limits, applied to every request the plugin sends.
pub struct OutboundHooks {
    /// What the plugin may reach; `None` refuses everything (the interface
    /// is not linked for such plugins, so this is a second line only).
    access: Option<Arc<Access>>,
    tag: LogTag,
}

impl OutboundHooks {
    /// Hooks enforcing `access` for the plugin and request in `tag`.
    pub fn new(access: Option<Arc<Access>>, tag: LogTag) -> OutboundHooks {
        OutboundHooks { access, tag }
    }
}

/// One request's outcome, as [`WasiHttpHooks::send_request`] delivers it.
type Exchange = Result<(http::Response<WasiBody>, Io), HttpError>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Io,
    ) -> Box<dyn Future<Output = Exchange> + Send> {
        let uri = request.uri();
        let target = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("?"),
            uri.authority().map_or("?", |authority| authority.as_str())
        );
        let access = match (&self.access, uri.scheme(), uri.authority()) {
            (Some(access), Some(scheme), Some(authority))
                if access.grant.allows(scheme, authority) =>
            {
                access.clone()
            }
            _ => {
                tracing::warn!(
                    plugin = %self.tag.plugin,
                    uid = %self.tag.uid,
                    %target,
                    "outbound request refused: not in the plugin's allowed-hosts (or wicket audit without --allow-outbound)"
                );
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        tracing::debug!(plugin = %self.tag.plugin, uid = %self.tag.uid, %target, "outbound request");
        Box::new(send_limited(request, options, access))
    }

    /// A failed connection is the plugin's business (it sees the error and
    /// decides); logged at debug with who tried, not as a host warning.
    fn p2_error_from_connect(&mut self, error: &std::io::Error) -> P2ErrorCode {
        tracing::debug!(plugin = %self.tag.plugin, uid = %self.tag.uid, %error, "outbound connection failed");
        P2ErrorCode::ConnectionRefused
    }
}

/// Sends `request` with the grant's timeout applied to connecting, to
/// everything up to the response's head, and between body chunks, and its
/// size cap applied to the response body.
async fn send_limited(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    access: Arc<Access>,
) -> Exchange {
    let timeout = access.grant.timeout();
    let cap = |asked: Option<Duration>| Some(asked.map_or(timeout, |asked| asked.min(timeout)));
    let options = options.unwrap_or_default();
    let options = RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    };
    let limit = access.grant.max_response_bytes();
    let exchange = async move {
        let https = request.uri().scheme() == Some(&Scheme::HTTPS);
        let (response, io) = match (&access.client_tls, https) {
            (Some(tls), true) => tls.send(request, &options).await?,
            _ => {
                let (response, io) =
                    wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
                (response.map(BodyExt::boxed_unsync), Box::new(io) as Io)
            }
        };
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|declared| declared > limit) {
            return Err(HttpError::HttpResponseBodySize(declared));
        }
        let response = response.map(|body| {
            http_body_util::Limited::new(body, limit as usize)
                .map_err(move |error| match error.downcast::<HttpError>() {
                    Ok(error) => *error,
                    Err(_over_limit) => HttpError::HttpResponseBodySize(Some(limit)),
                })
                .boxed_unsync()
        });
        Ok((response, io))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_elapsed) => Err(HttpError::HttpResponseTimeout),
    }
}

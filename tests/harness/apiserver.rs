//! A stand-in for the Kubernetes API server, in the test process: it keeps
//! the objects written to it, answers GET, PATCH (server-side apply), POST
//! and PUT as the API server does for the calls Wicket makes, and records
//! every request so tests can check paths, field manager and content.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string.
    pub query: String,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The `Authorization` header.
    pub authorization: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Value>,
    requests: Vec<Recorded>,
    next_version: u64,
    /// Another writer's object, stored just before the next write to its
    /// path, which then loses with 409 as a lost race would.
    race: Option<(String, Value)>,
}

/// The running stand-in; it stops with the test's runtime.
#[derive(Clone)]
pub struct ApiServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    state: Arc<Mutex<State>>,
}

/// The bearer token the kubeconfig carries.
pub const TOKEN: &str = "wicket-test-token";

impl ApiServer {
    /// Starts listening on `127.0.0.1`.
    pub async fn start() -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let server = ApiServer { url, state };
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let serving = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let serving = serving.clone();
                        async move { Ok::<_, Infallible>(serving.handle(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    /// A kubeconfig file in `dir` pointing at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\nusers:\n- name: test\n  user:\n    token: {TOKEN}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: wicket-system\ncurrent-context: test\n",
            self.url
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests other than reads.
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.method != "GET")
            .collect()
    }

    /// The object stored at `path`.
    pub fn object(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// Stores `object` at `path` as if someone else had written it.
    pub fn put_object(&self, path: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.next_version += 1;
        object["metadata"]["resourceVersion"] = state.next_version.to_string().into();
        state.objects.insert(path.to_owned(), object);
    }

    /// Makes the next write to `path` lose a race: `winner` is stored first
    /// and the write is answered 409.
    pub fn lose_next_write(&self, path: &str, winner: Value) {
        self.state.lock().unwrap().race = Some((path.to_owned(), winner));
    }

    async fn handle(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let recorded = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            content_type: header("content-type"),
            authorization: header("authorization"),
            body,
        };
        let mut state = self.state.lock().unwrap();
        state.requests.push(recorded.clone());
        let path = recorded.path.clone();
        if parts.method != Method::GET {
            let target = match parts.method {
                Method::POST => {
                    let body: Value = serde_json::from_slice(&recorded.body).unwrap_or_default();
                    format!(
                        "{path}/{}",
                        body["metadata"]["name"].as_str().unwrap_or_default()
                    )
                }
                _ => path.clone(),
            };
            if state
                .race
                .as_ref()
                .is_some_and(|(racing, _)| *racing == target)
            {
                let (_, mut winner) = state.race.take().unwrap();
                state.next_version += 1;
                winner["metadata"]["resourceVersion"] = state.next_version.to_string().into();
                state.objects.insert(target, winner);
                return status(StatusCode::CONFLICT, "AlreadyExists");
            }
        }
        match parts.method {
            Method::GET => match state.objects.get(&path) {
                Some(object) => answer(StatusCode::OK, object),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            },
            Method::PATCH | Method::PUT => {
                let Ok(mut object) = serde_json::from_slice::<Value>(&recorded.body) else {
                    return status(StatusCode::BAD_REQUEST, "BadRequest");
                };
                let stored_version = state
                    .objects
                    .get(&path)
                    .map(|stored| stored["metadata"]["resourceVersion"].clone());
                if parts.method == Method::PUT {
                    match &stored_version {
                        None => return status(StatusCode::NOT_FOUND, "NotFound"),
                        Some(version) if *version != object["metadata"]["resourceVersion"] => {
                            return status(StatusCode::CONFLICT, "Conflict");
                        }
                        Some(_) => {}
                    }
                }
                state.next_version += 1;
                object["metadata"]["resourceVersion"] = state.next_version.to_string().into();
                state.objects.insert(path, object.clone());
                answer(StatusCode::OK, &object)
            }
            Method::POST => {
                let Ok(mut object) = serde_json::from_slice::<Value>(&recorded.body) else {
                    return status(StatusCode::BAD_REQUEST, "BadRequest");
                };
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let path = format!("{path}/{name}");
                if state.objects.contains_key(&path) {
                    return status(StatusCode::CONFLICT, "AlreadyExists");
                }
                state.next_version += 1;
                object["metadata"]["resourceVersion"] = state.next_version.to_string().into();
                state.objects.insert(path, object.clone());
                answer(StatusCode::CREATED, &object)
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        }
    }
}

fn answer(code: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn status(code: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "reason": reason, "message": reason, "code": code.as_u16(),
    });
    answer(code, &body)
}

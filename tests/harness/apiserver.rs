//! A stand-in for the Kubernetes API server, in the test process: it keeps
//! the objects written to it, answers GET, PATCH (server-side apply), POST,
//! PUT and DELETE as the API server does for the calls Wicket makes, lists and
//! watches its kinds (`listwatch`), and records every request so tests can
//! check paths, field manager and content.

#[path = "apiserver_listwatch.rs"]
mod listwatch;

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::watch;

use listwatch::Change;
pub use listwatch::{KINDS, ServedKind};

/// What the stand-in answers with: whole, or streamed (a watch).
type Body = BoxBody<Bytes, Infallible>;

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
    /// The `Accept` header.
    pub accept: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

struct State {
    objects: HashMap<String, Value>,
    requests: Vec<Recorded>,
    next_version: u64,
    /// Another writer's object, stored just before the next write to its
    /// path, which then loses with 409 as a lost race would.
    race: Option<(String, Value)>,
    /// The kinds listed and watched.
    kinds: Vec<ServedKind>,
    /// Every change, for watches.
    changes: Vec<Change>,
    /// Watches from before this version are answered 410.
    compacted: u64,
    /// Bumped to end every open watch.
    watch_epoch: u64,
    /// Resources whose list and watch are answered 403.
    forbidden: BTreeSet<&'static str>,
}

impl Default for State {
    fn default() -> Self {
        State {
            objects: HashMap::new(),
            requests: Vec::new(),
            next_version: 0,
            race: None,
            kinds: KINDS.to_vec(),
            changes: Vec::new(),
            compacted: 0,
            watch_epoch: 0,
            forbidden: BTreeSet::new(),
        }
    }
}

impl State {
    /// Stores `object` at `path` with the next resourceVersion, recorded
    /// for watches.
    fn store(&mut self, path: String, mut object: Value) -> Value {
        self.next_version += 1;
        object["metadata"]["resourceVersion"] = self.next_version.to_string().into();
        let kind = match self.objects.insert(path.clone(), object.clone()) {
            Some(_) => "MODIFIED",
            None => "ADDED",
        };
        self.changes.push(Change {
            version: self.next_version,
            path,
            kind,
            object: object.clone(),
        });
        object
    }

    /// Removes the object at `path`, recorded for watches.
    fn remove(&mut self, path: String) -> Option<Value> {
        let mut gone = self.objects.remove(&path)?;
        self.next_version += 1;
        gone["metadata"]["resourceVersion"] = self.next_version.to_string().into();
        self.changes.push(Change {
            version: self.next_version,
            path,
            kind: "DELETED",
            object: gone.clone(),
        });
        Some(gone)
    }
}

/// The running stand-in; it stops with the test's runtime.
#[derive(Clone)]
pub struct ApiServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    state: Arc<Mutex<State>>,
    /// The last version stored, for watches to wait on.
    changed: Arc<watch::Sender<u64>>,
    /// `false` while lists are held (answered once it turns `true`).
    lists_open: Arc<watch::Sender<bool>>,
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
        let changed = Arc::new(watch::Sender::new(0));
        let server = ApiServer {
            url,
            state,
            changed,
            lists_open: Arc::new(watch::Sender::new(true)),
        };
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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Wakes the open watches.
    fn changed(&self) {
        let version = self.state().next_version;
        self.changed.send_replace(version);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
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
    pub fn put_object(&self, path: &str, object: Value) {
        self.state().store(path.to_owned(), object);
        self.changed();
    }

    /// Stores each of `objects` (of the kinds served) where its kind keeps
    /// it, as if someone else had written them, and tells the watches.
    pub fn add(&self, objects: impl IntoIterator<Item = Value>) {
        let mut state = self.state();
        for object in objects {
            let path = state.path_of(&object);
            state.store(path, object);
        }
        drop(state);
        self.changed();
    }

    /// Deletes `object` (of a kind served), as someone else would.
    pub fn delete(&self, object: &Value) {
        let mut state = self.state();
        let path = state.path_of(object);
        state.remove(path);
        drop(state);
        self.changed();
    }

    /// Lists and watches of `plural` are refused (403) from now on, or
    /// allowed again.
    pub fn forbid(&self, plural: &'static str, forbidden: bool) {
        let mut state = self.state();
        match forbidden {
            true => state.forbidden.insert(plural),
            false => state.forbidden.remove(plural),
        };
    }

    /// Holds every list from now on until [`ApiServer::answer_lists`]:
    /// a cache that cannot complete its first list.
    pub fn hold_lists(&self) {
        self.lists_open.send_replace(false);
    }

    /// Answers the lists held, and those to come.
    pub fn answer_lists(&self) {
        self.lists_open.send_replace(true);
    }

    /// The lists and watches of the collection `path` so far.
    pub fn lists_and_watches(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == "GET" && request.path == path)
            .collect()
    }

    /// Ends every open watch and compacts the history, as an etcd
    /// compaction does: a watch resumed from an older version is answered
    /// `410 Expired`, which makes a client list again.
    pub fn expire_watches(&self) {
        let mut state = self.state();
        state.next_version += 1;
        state.compacted = state.next_version;
        state.watch_epoch += 1;
        drop(state);
        self.changed();
    }

    /// Makes the next write to `path` lose a race: `winner` is stored first
    /// and the write is answered 409.
    pub fn lose_next_write(&self, path: &str, winner: Value) {
        self.state.lock().unwrap().race = Some((path.to_owned(), winner));
    }

    async fn handle(&self, request: Request<hyper::body::Incoming>) -> Response<Body> {
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
            accept: header("accept"),
            body,
        };
        self.state().requests.push(recorded.clone());
        let list = parts.method == Method::GET
            && !recorded.query.contains("watch=")
            && (self.state().kinds.iter()).any(|kind| kind.collection() == recorded.path);
        if list {
            let _ = self.lists_open.subscribe().wait_for(|open| *open).await;
        }
        if parts.method == Method::GET
            && let Some(answer) =
                listwatch::get(self, &recorded.path, &recorded.query, &recorded.accept)
        {
            return answer;
        }
        let answered = self.respond(&parts.method, recorded);
        self.changed();
        answered
    }

    /// Answers a request other than a list, watch or discovery.
    fn respond(&self, method: &Method, recorded: Recorded) -> Response<Body> {
        let mut state = self.state();
        let path = recorded.path.clone();
        if *method != Method::GET {
            let target = match *method {
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
                let (_, winner) = state.race.take().unwrap();
                state.store(target, winner);
                return status(StatusCode::CONFLICT, "AlreadyExists");
            }
        }
        match *method {
            Method::GET => match state.objects.get(&path) {
                Some(object) => answer(StatusCode::OK, object),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            },
            Method::PATCH | Method::PUT => {
                let Ok(object) = serde_json::from_slice::<Value>(&recorded.body) else {
                    return status(StatusCode::BAD_REQUEST, "BadRequest");
                };
                let stored_version = state
                    .objects
                    .get(&path)
                    .map(|stored| stored["metadata"]["resourceVersion"].clone());
                if *method == Method::PUT {
                    match &stored_version {
                        None => return status(StatusCode::NOT_FOUND, "NotFound"),
                        Some(version) if *version != object["metadata"]["resourceVersion"] => {
                            return status(StatusCode::CONFLICT, "Conflict");
                        }
                        Some(_) => {}
                    }
                }
                let object = state.store(path, object);
                answer(StatusCode::OK, &object)
            }
            Method::POST => {
                let Ok(object) = serde_json::from_slice::<Value>(&recorded.body) else {
                    return status(StatusCode::BAD_REQUEST, "BadRequest");
                };
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let path = format!("{path}/{name}");
                if state.objects.contains_key(&path) {
                    return status(StatusCode::CONFLICT, "AlreadyExists");
                }
                let object = state.store(path, object);
                answer(StatusCode::CREATED, &object)
            }
            Method::DELETE => match state.remove(path) {
                Some(object) => answer(StatusCode::OK, &object),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            },
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        }
    }
}

impl State {
    /// Where `object` is stored, by its kind (one of the kinds served).
    fn path_of(&self, object: &Value) -> String {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let api_version = text("/apiVersion");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = self
            .kinds
            .iter()
            .find(|kind| {
                kind.group == group && kind.version == version && kind.kind == text("/kind")
            })
            .unwrap_or_else(|| {
                panic!(
                    "the stand-in API server serves no {api_version} {}",
                    text("/kind")
                )
            });
        kind.object_path(text("/metadata/namespace"), text("/metadata/name"))
    }
}

fn answer(code: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn status(code: StatusCode, reason: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "reason": reason, "message": reason, "code": code.as_u16(),
    });
    answer(code, &body)
}

//! The two etcd calls the guard makes, through etcd's JSON gateway (the
//! gRPC API over HTTP, which every etcd ≥ 3.4 serves on its client port):
//! `POST /v3/maintenance/status` and `POST /v3/cluster/member/list`.
//!
//! The gateway writes 64-bit integers as JSON strings; both forms are read.

use serde::{Deserialize, Deserializer};
use wicket_sdk::http::{self, HttpError, Request};

/// What a member says of itself.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    /// Which member answered.
    pub header: Header,
    /// The member it follows (itself if it leads); 0 when it knows no leader.
    #[serde(default, deserialize_with = "id")]
    pub leader: u64,
}

/// The response header common to etcd's answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// The answering member's ID.
    #[serde(deserialize_with = "id")]
    pub member_id: u64,
}

/// One member of the cluster.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    /// The member's ID.
    #[serde(rename = "ID", deserialize_with = "id")]
    pub id: u64,
    /// Its `--name`; empty until a newly added member first starts.
    #[serde(default)]
    pub name: String,
    /// Where clients reach it.
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
    /// A learner does not vote and does not count towards quorum.
    #[serde(rename = "isLearner", default)]
    pub learner: bool,
}

#[derive(Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Vec<Member>,
}

impl Status {
    /// Whether the answering member is the raft leader.
    pub fn leads(&self) -> bool {
        self.leader != 0 && self.leader == self.header.member_id
    }
}

fn status_request(client_url: &str) -> Request {
    Request::post(format!("{client_url}/v3/maintenance/status")).json(&serde_json::json!({}))
}

/// The status of the member at `client_url`.
pub fn status(client_url: &str) -> Result<Status, HttpError> {
    http::send(status_request(client_url))?.json()
}

/// The statuses of several members, asked all at once, in their order; a
/// member that never started (no client URL) is an error.
pub fn statuses(members: &[&Member]) -> Vec<Result<Status, String>> {
    let requests = members
        .iter()
        .filter_map(|member| member.client_urls.first())
        .map(|url| status_request(url))
        .collect();
    let mut answers = http::send_all(requests).into_iter();
    members
        .iter()
        .map(|member| match member.client_urls.first() {
            None => Err("never started: no client URL".to_owned()),
            Some(_) => answers
                .next()
                .ok_or_else(|| "no answer".to_owned())?
                .and_then(|response| response.json())
                .map_err(|error| error.to_string()),
        })
        .collect()
}

/// The cluster's members, as the member at `client_url` knows them.
pub fn members(client_url: &str) -> Result<Vec<Member>, HttpError> {
    let request =
        Request::post(format!("{client_url}/v3/cluster/member/list")).json(&serde_json::json!({}));
    Ok(http::send(request)?.json::<MemberList>()?.members)
}

/// A member ID written either as a number or as a decimal string.
fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    match Id::deserialize(deserializer)? {
        Id::Number(id) => Ok(id),
        Id::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As etcd 3.4's gateway writes them (trimmed).
    #[test]
    fn gateway_answers_parse() {
        let status: Status = serde_json::from_str(
            r#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"1","raft_term":"2"},
                "version":"3.4.23","dbSize":"20480","leader":"10276657743932975437","raftIndex":"4","raftTerm":"2"}"#,
        )
        .unwrap();
        assert!(status.leads());
        assert_eq!(status.header.member_id, 10276657743932975437);
        let list: MemberList = serde_json::from_str(
            r#"{"header":{"member_id":"1"},"members":[
                {"ID":"10276657743932975437","name":"etcd-0","peerURLs":["http://127.0.0.2:2380"],"clientURLs":["http://127.0.0.2:2379"]},
                {"ID":"2","peerURLs":["http://127.0.0.5:2380"],"isLearner":true}]}"#,
        )
        .unwrap();
        assert_eq!(list.members[0].name, "etcd-0");
        assert_eq!(list.members[0].client_urls, ["http://127.0.0.2:2379"]);
        assert!(list.members[1].learner && list.members[1].name.is_empty());
        let follower: Status =
            serde_json::from_str(r#"{"header":{"member_id":3},"leader":7}"#).unwrap();
        assert!(!follower.leads());
    }
}

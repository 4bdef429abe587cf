//! A real etcd cluster for the guard's tests: Debian's `etcd` binary, one
//! member per loopback address (`etcd-0` on 127.0.0.2, `etcd-1` on
//! 127.0.0.3, ...), client port 2379 and peer port 2380 on each.
//!
//! The cluster is read through the same JSON gateway the guard uses, with
//! hyper's client (so the test does not trust the code under test to observe
//! etcd).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The client port of every member.
pub const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
/// The TLS member's plain client port, for the harness alone.
const PLAIN_PORT: u16 = 2381;
/// How long members get to start or elect a leader.
const ETCD_PATIENCE: Duration = Duration::from_secs(30);

/// A running etcd cluster; its members are killed when it is dropped.
pub struct EtcdCluster {
    members: Vec<EtcdMember>,
    data: tempfile::TempDir,
}

struct EtcdMember {
    name: String,
    ip: String,
    process: Option<Child>,
}

impl EtcdCluster {
    /// Starts `size` members and waits until they agree on a leader.
    pub async fn start(size: usize) -> anyhow::Result<EtcdCluster> {
        let members: Vec<EtcdMember> = (0..size)
            .map(|index| EtcdMember {
                name: format!("etcd-{index}"),
                ip: format!("127.0.0.{}", index + 2),
                process: None,
            })
            .collect();
        let mut cluster = EtcdCluster {
            members,
            data: tempfile::tempdir()?,
        };
        for index in 0..size {
            cluster.run(index)?;
        }
        cluster.wait_for_leader(None).await;
        Ok(cluster)
    }

    /// Member `index`'s pod name (`etcd-INDEX`).
    pub fn name(&self, index: usize) -> &str {
        &self.members[index].name
    }

    /// Member `index`'s address: its pod IP in the reviews.
    pub fn ip(&self, index: usize) -> &str {
        &self.members[index].ip
    }

    /// Member `index`'s client URL.
    pub fn client_url(&self, index: usize) -> String {
        format!("http://{}:{CLIENT_PORT}", self.ip(index))
    }

    /// How many members there are, running or not.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Starts (or restarts, on its existing data) member `index`.
    pub fn run(&mut self, index: usize) -> anyhow::Result<()> {
        let initial_cluster = self
            .members
            .iter()
            .map(|member| format!("{}=http://{}:{PEER_PORT}", member.name, member.ip))
            .collect::<Vec<_>>()
            .join(",");
        let data_dir: PathBuf = self.data.path().join(&self.members[index].name);
        let log = std::fs::File::create(self.data.path().join(format!("etcd-{index}.log")))?;
        let member = &mut self.members[index];
        let client = format!("http://{}:{CLIENT_PORT}", member.ip);
        let child = spawn_etcd(
            &member.name,
            &member.ip,
            &data_dir,
            &[client],
            &initial_cluster,
            log,
            &[],
        )?;
        member.process = Some(child);
        Ok(())
    }

    /// Stops member `index` (SIGKILL: as abrupt as a node loss).
    pub fn stop(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The index of the member every running member follows, once they all
    /// agree on one that is not `not`; panics after 30 s.
    pub async fn wait_for_leader(&self, not: Option<usize>) -> usize {
        crate::eventually(
            "etcd members to agree on a leader",
            ETCD_PATIENCE,
            async || {
                self.agreed_leader()
                    .await
                    .filter(|leader| Some(*leader) != not)
            },
        )
        .await
    }

    /// The leader's index if every running member reports the same one.
    async fn agreed_leader(&self) -> Option<usize> {
        let mut agreed = None;
        let mut ids = Vec::new();
        for (index, member) in self.members.iter().enumerate() {
            if member.process.is_none() {
                continue;
            }
            let status = self.status(index).await.ok()?;
            let leader = id(&status["leader"])?;
            if leader == 0 || agreed.is_some_and(|agreed| agreed != leader) {
                return None;
            }
            agreed = Some(leader);
            ids.push((index, id(&status["header"]["member_id"])?));
        }
        let leader = agreed?;
        ids.iter()
            .find(|(_, member_id)| *member_id == leader)
            .map(|(index, _)| *index)
    }

    /// Member `index`'s ID, as etcdctl writes it (hex).
    pub async fn member_id_hex(&self, index: usize) -> anyhow::Result<String> {
        member_id_hex(self.ip(index), CLIENT_PORT).await
    }

    /// `POST /v3/maintenance/status` to member `index`.
    pub async fn status(&self, index: usize) -> anyhow::Result<Value> {
        post_json(self.ip(index), CLIENT_PORT, "/v3/maintenance/status").await
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.stop(index);
        }
    }
}

/// Starts the etcd member `name` with its peer URL on `ip`: it listens for
/// clients on `client_urls` and advertises the first; `extra` arguments
/// follow.
fn spawn_etcd(
    name: &str,
    ip: &str,
    data_dir: &Path,
    client_urls: &[String],
    initial_cluster: &str,
    log: std::fs::File,
    extra: &[OsString],
) -> anyhow::Result<Child> {
    let peer = format!("http://{ip}:{PEER_PORT}");
    Command::new("etcd")
        .args(["--name", name])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen-client-urls", &client_urls.join(",")])
        .args(["--advertise-client-urls", &client_urls[0]])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", initial_cluster])
        .args(["--initial-cluster-state", "new"])
        .args(["--initial-cluster-token", "wicket-test"])
        // Twice the default timings: a busy CI machine must not cause
        // elections the test did not ask for.
        .args(["--heartbeat-interval", "200", "--election-timeout", "2000"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting etcd (Debian package etcd-server)")
}

/// The ID of the member answering at `ip:port`, as etcdctl writes it (hex).
async fn member_id_hex(ip: &str, port: u16) -> anyhow::Result<String> {
    let status = post_json(ip, port, "/v3/maintenance/status").await?;
    let id = id(&status["header"]["member_id"]).context("member_id")?;
    Ok(format!("{id:x}"))
}

/// A 64-bit ID as the gateway writes it (a decimal string).
fn id(value: &Value) -> Option<u64> {
    value.as_str()?.parse().ok().or_else(|| value.as_u64())
}

/// POSTs `{}` to the gateway's `path` on `ip:port` and reads the JSON
/// answer, within 2 s.
async fn post_json(ip: &str, port: u16, path: &str) -> anyhow::Result<Value> {
    let client = HyperClient::builder(TokioExecutor::new()).build_http();
    let request = http::Request::post(format!("http://{ip}:{port}{path}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))?;
    let exchange = async {
        let response = client.request(request).await?;
        ensure!(
            response.status() == 200,
            "etcd answered {}",
            response.status()
        );
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .context("etcd did not answer within 2 s")?
}

/// One etcd member that serves clients only over TLS with client
/// certificates (`--client-cert-auth`), as kubeadm runs etcd: on
/// `https://127.0.0.5:2379`, with a CA, a server and a client certificate
/// made for the test. A plain listener on [`PLAIN_PORT`] lets the harness
/// see when it is ready without the code under test.
pub struct TlsEtcd {
    process: Child,
    dir: tempfile::TempDir,
}

impl TlsEtcd {
    /// The member's address (its pod IP in reviews).
    pub const IP: &str = "127.0.0.5";

    /// Makes the certificates, starts the member and waits until it leads.
    pub async fn start() -> anyhow::Result<TlsEtcd> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        let dir = tempfile::tempdir()?;
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem);

        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wicket test etcd CA");
        write("ca.pem", ca.self_signed(&ca_key)?.pem())?;
        let issuer = Issuer::new(ca, ca_key);
        // etcd's gateway dials its own gRPC server with the server
        // certificate, so that one needs client authentication as well.
        for (name, subject, usages) in [
            (
                "server",
                Self::IP,
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
            ),
            (
                "client",
                "wicket",
                vec![ExtendedKeyUsagePurpose::ClientAuth],
            ),
        ] {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(vec![subject.to_owned()])?;
            params.distinguished_name.push(DnType::CommonName, subject);
            params.extended_key_usages = usages;
            write(
                &format!("{name}.pem"),
                params.signed_by(&key, &issuer)?.pem(),
            )?;
            write(&format!("{name}-key.pem"), key.serialize_pem())?;
        }

        let file = |name: &str| dir.path().join(name);
        let peer = format!("http://{}:{PEER_PORT}", Self::IP);
        let https = format!("https://{}:{CLIENT_PORT}", Self::IP);
        let log = std::fs::File::create(file("etcd.log"))?;
        let tls_args = [
            "--client-cert-auth".into(),
            "--trusted-ca-file".into(),
            file("ca.pem").into_os_string(),
            "--cert-file".into(),
            file("server.pem").into_os_string(),
            "--key-file".into(),
            file("server-key.pem").into_os_string(),
        ];
        let process = spawn_etcd(
            "etcd-tls",
            Self::IP,
            &file("data"),
            &[https, format!("http://{}:{PLAIN_PORT}", Self::IP)],
            &format!("etcd-tls={peer}"),
            log,
            &tls_args,
        )?;
        let member = TlsEtcd { process, dir };
        crate::eventually("the TLS etcd member to lead", ETCD_PATIENCE, async || {
            let status = post_json(Self::IP, PLAIN_PORT, "/v3/maintenance/status")
                .await
                .ok()?;
            (status["leader"] == status["header"]["member_id"]).then_some(())
        })
        .await;
        Ok(member)
    }

    /// A PEM file the test made: `ca.pem`, `client.pem`, `client-key.pem`, ...
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The member's ID, as etcdctl writes it.
    pub async fn member_id_hex(&self) -> anyhow::Result<String> {
        member_id_hex(Self::IP, PLAIN_PORT).await
    }
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

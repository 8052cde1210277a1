//! Real Redis servers for the tests: one `redis-server` per test on a free loopback port, or a
//! three-primary cluster, killed when dropped.
//!
//! Without `redis-server` on the `PATH`, tests that can share a server use `REDIS_URL` if it is
//! set and are skipped otherwise, with a message on stderr; `REQUIRE_REDIS=1` (set by CI) turns
//! the skip into a failure. Tests that kill or pause the server always need their own.

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer `PING` after it is started.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A Redis to test against: our own server, or the one `REDIS_URL` names.
pub enum Redis {
    Own(RedisServer),
    External(String),
}

impl Redis {
    /// The server's URL.
    pub fn url(&self) -> String {
        match self {
            Redis::Own(server) => server.url(),
            Redis::External(url) => url.clone(),
        }
    }

    /// Runs `redis-cli` against the server and returns its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        match self {
            Redis::Own(server) => server.cli(args),
            Redis::External(url) => cli(&["-u", url], args),
        }
    }
}

/// A server for a test that only needs some Redis: our own if `redis-server` is installed, else
/// `REDIS_URL`, else `None` (skip).
pub fn redis() -> Option<Redis> {
    if installed("redis-server") {
        return Some(Redis::Own(RedisServer::start()));
    }
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() && installed("redis-cli") => Some(Redis::External(url)),
        Ok(url) if !url.is_empty() => skip("REDIS_URL is set but redis-cli is not installed"),
        _ => skip(
            "redis-server is not installed and REDIS_URL is not set (install redis-server, or set REDIS_URL)",
        ),
    }
}

/// A server of the test's own, which it may kill or pause; `None` (skip) without `redis-server`.
pub fn own_server() -> Option<RedisServer> {
    if installed("redis-server") {
        Some(RedisServer::start())
    } else {
        skip("this test kills or pauses its own server, and redis-server is not installed")
    }
}

/// A primary watched by one Sentinel; `None` (skip) without `redis-server`.
pub fn sentinel() -> Option<RedisSentinel> {
    if installed("redis-server") {
        Some(RedisSentinel::start())
    } else {
        skip("redis-server is needed for a local Sentinel")
    }
}

/// A three-primary cluster; `None` (skip) without `redis-server` and `redis-cli`.
pub fn cluster() -> Option<RedisCluster> {
    if installed("redis-server") && installed("redis-cli") {
        Some(RedisCluster::start())
    } else {
        skip("redis-server and redis-cli are needed for a local Redis Cluster")
    }
}

fn skip<T>(reason: &str) -> Option<T> {
    if std::env::var("REQUIRE_REDIS").is_ok_and(|value| value == "1") {
        panic!("REQUIRE_REDIS=1 but {reason}; install the redis-server and redis-tools packages");
    }
    // Written past the test harness's capture, so the skip shows in a normal run.
    let _ = writeln!(std::io::stderr(), "skipping a Redis test: {reason}");
    None
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn cli(target: &[&str], args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(target)
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A `redis-server` process of our own on a loopback port.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// For a Sentinel: the port of the primary it watches.
    watches: Option<u16>,
    /// For a TLS server: its certificates, and whether it demands a client certificate.
    tls: Option<(PathBuf, bool)>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server and waits until it answers.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra arguments, retrying on another port if the chosen one was
    /// taken in the meantime.
    fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::start_kind(extra, None, None)
    }

    fn start_kind(
        extra: &[&str],
        watches: Option<u16>,
        tls: Option<(PathBuf, bool)>,
    ) -> RedisServer {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port_pair();
            let dir = std::env::temp_dir()
                .join(format!("axum-cache-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temporary directory");
            let mut server = RedisServer {
                port,
                dir,
                extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
                watches,
                tls: tls.clone(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut command = Command::new("redis-server");
        match self.watches {
            // A Sentinel reads (and rewrites) a configuration file of its own.
            Some(primary) => {
                let config = self.dir.join("sentinel.conf");
                std::fs::write(
                    &config,
                    format!("sentinel monitor mymaster 127.0.0.1 {primary} 1\n"),
                )
                .map_err(|error| format!("sentinel.conf: {error}"))?;
                command.arg(&config).arg("--sentinel");
            }
            None => {
                command.args(["--save", "", "--appendonly", "no"]);
            }
        }
        // The plain port stays open next to the TLS one, for the readiness check and redis-cli.
        if let Some((certificates, verify_clients)) = &self.tls {
            command
                .args(["--tls-port", &self.tls_port().to_string()])
                .arg("--tls-cert-file")
                .arg(certificates.join("server.crt"))
                .arg("--tls-key-file")
                .arg(certificates.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(certificates.join("ca.crt"))
                .args([
                    "--tls-auth-clients",
                    if *verify_clients { "yes" } else { "no" },
                ]);
        }
        let mut child = command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir".as_ref(), self.dir.as_os_str()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("spawn: {error}"))?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
                return Err(format!("redis-server exited with {status}"));
            }
            if ping(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("no PONG within the deadline".to_owned());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TLS port: the one a cluster would use for its bus, free by construction.
    fn tls_port(&self) -> u16 {
        self.port + 10_000
    }

    pub fn cli(&self, args: &[&str]) -> String {
        cli(&["-p", &self.port.to_string()], args)
    }

    /// SIGKILL, as in a crash; waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the server keeps its connections but answers nothing.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Starts the server again on the same port (empty: nothing is saved).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().expect("redis-server restarts on its port");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A primary and one Sentinel that names it `mymaster`.
pub struct RedisSentinel {
    pub primary: RedisServer,
    sentinel: RedisServer,
}

impl RedisSentinel {
    pub fn start() -> RedisSentinel {
        let primary = RedisServer::start();
        let sentinel = RedisServer::start_kind(&[], Some(primary.port), None);
        RedisSentinel { primary, sentinel }
    }

    /// `redis+sentinel://` naming the Sentinel and the service.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}?sentinelServiceName=mymaster",
            self.sentinel.port
        )
    }
}

/// A server that also listens with TLS, and the certificates for it; `None` (skip) without
/// `redis-server` and `openssl`.
pub fn tls_server(verify_clients: bool) -> Option<RedisTlsServer> {
    if !installed("redis-server") {
        return skip("redis-server is needed for a TLS test");
    }
    if !Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
    {
        return skip("openssl is needed to make the certificates of a TLS test");
    }
    let certificates = Certificates::make();
    let server = RedisServer::start_kind(&[], None, Some((certificates.0.clone(), verify_clients)));
    Some(RedisTlsServer {
        server,
        certificates,
    })
}

/// A TLS-enabled `redis-server`.
pub struct RedisTlsServer {
    pub server: RedisServer,
    certificates: Certificates,
}

impl RedisTlsServer {
    /// `rediss://` to the TLS port.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.server.tls_port())
    }

    /// A file of the test certificates: `ca.crt`, `other-ca.crt`, `client.crt`, `client.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.certificates.0.join(name)
    }

    /// The contents of [`file`](Self::file).
    pub fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.file(name)).expect("certificate file")
    }
}

/// A directory of throwaway certificates: an authority, a server certificate for 127.0.0.1
/// signed by it, a client identity signed by it, and an unrelated second authority.
struct Certificates(PathBuf);

impl Certificates {
    fn make() -> Certificates {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "axum-cache-tls-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl runs");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key_file, cert_file) = (format!("{ca}.key"), format!("{ca}.crt"));
            let subject = format!("/CN=axum-cache test {ca}");
            let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
            args.extend(key);
            args.extend(["-keyout", &key_file, "-out", &cert_file]);
            openssl(&args);
        }
        for (name, usage) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
            ),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            let extensions = format!("{name}.ext");
            std::fs::write(
                dir.join(&extensions),
                format!("basicConstraints=CA:FALSE\n{usage}\n"),
            )
            .expect("extensions file");
            let (key_file, request, cert_file) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            let subject = format!("/CN=axum-cache test {name}");
            let mut args = vec!["req", "-subj", &subject];
            args.extend(key);
            args.extend(["-keyout", &key_file, "-out", &request]);
            openssl(&args);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &request,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extensions,
                "-out",
                &cert_file,
            ]);
        }
        Certificates(dir)
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Three primaries joined into a cluster.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            while !node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "the cluster never became ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes }
    }

    /// `redis+cluster://` with every node.
    pub fn url(&self) -> String {
        let mut url = format!("redis+cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", node.port));
        }
        url
    }

    /// Runs `redis-cli -c` (following redirections) through the first node.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(&["-c", "-p", &self.nodes[0].port.to_string()], args)
    }

    /// How many keys each primary holds.
    pub fn key_counts(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|node| node.cli(&["DBSIZE"]).parse().expect("DBSIZE is a number"))
            .collect()
    }
}

/// Whether a server answers `PING` on `port`.
fn ping(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A port whose cluster-bus companion (port + 10000) is free too.
fn free_port_pair() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let port = 20_000 + (hasher.finish() % 25_000) as u16;
        let free = |port: u16| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

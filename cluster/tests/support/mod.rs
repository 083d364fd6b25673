//! A real `redis-server` for the tests: started on a free loopback port,
//! stopped by its process id when dropped, whatever the test did.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nity_registry_cluster::{ClusterNode, NodeConfig};

#[allow(dead_code)] // each test file uses a part of it
pub struct RedisServer {
  child: Child,
  pub port: u16,
  extra: Vec<String>,
}

fn free_port() -> u16 {
  let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
  listener.local_addr().expect("its address").port()
}

#[allow(dead_code)]
impl RedisServer {
  /// Starts a server without persistence; `extra` are more config lines as arguments.
  pub fn start(extra: &[&str]) -> RedisServer {
    let port = free_port();
    let extra: Vec<String> = extra
      .iter()
      .map(|s| {
        if *s == "TLS_PORT" {
          port.to_string()
        } else {
          s.to_string()
        }
      })
      .collect();
    let child = spawn(port, &extra);
    let server = RedisServer { child, port, extra };
    server.wait_ready();
    server
  }

  pub fn url(&self) -> String {
    format!("redis://127.0.0.1:{}/0", self.port)
  }

  fn wait_ready(&self) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
      if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
        return;
      }
      std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server did not start on port {}", self.port);
  }

  /// Starts a server that speaks TLS only, with a certificate for 127.0.0.1
  /// signed by a new test CA; returns it and the CA's PEM file.
  #[allow(dead_code)] // not every test file uses it
  pub fn start_tls(dir: &std::path::Path) -> (RedisServer, std::path::PathBuf) {
    let run = |args: &[&str]| {
      let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
      assert!(status.success(), "openssl {args:?}");
    };
    run(&[
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=nity test CA",
    ]);
    run(&[
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      "-subj",
      "/CN=127.0.0.1",
    ]);
    std::fs::write(
      dir.join("ext.cnf"),
      "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext.cnf");
    run(&[
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ]);
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let server = RedisServer::start(&[
      "--tls-port",
      "TLS_PORT",
      "--tls-cert-file",
      &path("server.pem"),
      "--tls-key-file",
      &path("server.key"),
      "--tls-ca-cert-file",
      &path("ca.pem"),
      "--tls-auth-clients",
      "no",
    ]);
    (server, dir.join("ca.pem"))
  }

  /// Kills the server (SIGKILL) and starts an empty one on the same port.
  pub fn restart_empty(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
    self.child = spawn(self.port, &self.extra);
    self.wait_ready();
  }

  /// Runs one command on the server, synchronously.
  pub fn command(&self, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(self.url()).expect("a client");
    let mut con = client.get_connection().expect("a connection");
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
      cmd.arg(*arg);
    }
    cmd.query(&mut con).expect("the command")
  }
}

fn spawn(port: u16, extra: &[String]) -> Child {
  // A TLS server listens on the port with TLS only.
  let plain = if extra.iter().any(|a| a == "--tls-port") {
    "0".to_owned()
  } else {
    port.to_string()
  };
  Command::new("redis-server")
    .args([
      "--port",
      &plain,
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ])
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("redis-server is installed (apt-get install redis-server)")
}

impl Drop for RedisServer {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

pub fn config(url: &str, namespace: &str, node: &str, lease_ms: u64) -> NodeConfig {
  NodeConfig {
    redis_url: url.to_owned(),
    namespace: namespace.to_owned(),
    node_id: node.to_owned(),
    lease_ms,
    request_timeout_ms: 2_000,
    started_at: 1_000.0,
  }
}

#[allow(dead_code)] // not every test file uses it
pub async fn node(url: &str, namespace: &str, node: &str, lease_ms: u64) -> ClusterNode {
  ClusterNode::connect(config(url, namespace, node, lease_ms))
    .await
    .expect("the node connects")
}

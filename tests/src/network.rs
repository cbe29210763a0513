//! A company network on one machine: a "cluster" network namespace that only a real HTTP
//! proxy (Debian's tinyproxy, running inside it) connects the test to.
//!
//! The namespace and this machine share a veth link (`10.88.N.1` here, `10.88.N.2` there,
//! and `10.88.N.3` for a server that moves). Cluster host names resolve only inside the
//! namespace (its own `/etc/netns/NAME/hosts`), so a client on this machine reaches
//! `manager.cluster.test` through the proxy or not at all: the proxy resolves the name,
//! as a company proxy resolves internal names its clients cannot. Everything is removed
//! when the fixture is dropped. Creating namespaces needs root: [`Cluster::create`] says
//! so and gives `None` otherwise.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::{free_port, is_root, wait_until_listening};

/// The cluster's host name, as the proxy resolves it.
pub const MANAGER_HOST: &str = "manager.cluster.test";

/// Subnets handed out in this process (tests run in parallel threads): never the same
/// twice, up to 250 clusters.
static HANDED_OUT: AtomicU8 = AtomicU8::new(0);

/// A network namespace reachable from here over one veth link.
pub struct Cluster {
    /// The namespace's name.
    pub name: String,
    /// This machine's address on the link.
    pub host_ip: Ipv4Addr,
    /// The namespace's address on the link.
    pub inside_ip: Ipv4Addr,
    /// A second address of this machine on the link, for a server that moves.
    pub other_host_ip: Ipv4Addr,
    link: String,
}

fn ip(args: &[&str]) -> std::process::Output {
    std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)")
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// Makes the namespace and the link (needs root; `None`, with the reason printed,
    /// otherwise).
    pub fn create() -> Option<Cluster> {
        if !is_root() {
            eprintln!("skipped: network namespaces need root");
            return None;
        }
        let pid = std::process::id();
        // Distinct per test of this process, and starting elsewhere for another process.
        let offset = (pid % 250) as u8;
        let n = offset.wrapping_add(HANDED_OUT.fetch_add(1, Ordering::Relaxed)) % 250 + 1;
        let name = format!("ph-net-{pid}-{n}");
        let link = format!("ph{}h{n}", pid % 100_000);
        let peer = format!("ph{}n{n}", pid % 100_000);
        let host_ip = Ipv4Addr::new(10, 88, n, 1);
        let inside_ip = Ipv4Addr::new(10, 88, n, 2);
        let other_host_ip = Ipv4Addr::new(10, 88, n, 3);
        // Left over from a run that was killed.
        let _ = ip(&["netns", "del", &name]);
        let _ = ip(&["link", "del", &link]);
        ip_ok(&["netns", "add", &name]);
        let cluster = Cluster {
            name: name.clone(),
            host_ip,
            inside_ip,
            other_host_ip,
            link: link.clone(),
        };
        ip_ok(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip_ok(&["link", "set", &peer, "netns", &name]);
        ip_ok(&["addr", "add", &format!("{host_ip}/24"), "dev", &link]);
        ip_ok(&["addr", "add", &format!("{other_host_ip}/24"), "dev", &link]);
        ip_ok(&["link", "set", &link, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name.as_str(), "ip"];
            all.extend_from_slice(args);
            ip_ok(&all);
        };
        inside(&["addr", "add", &format!("{inside_ip}/24"), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        cluster.set_manager_address(host_ip);
        Some(cluster)
    }

    fn hosts_file(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name).join("hosts")
    }

    /// Where [`MANAGER_HOST`] points inside the namespace from now on. The file is
    /// rewritten in place: processes already inside see it through their bind mount.
    pub fn set_manager_address(&self, address: Ipv4Addr) {
        let path = self.hosts_file();
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("/etc/netns/NAME");
        std::fs::write(
            &path,
            format!("127.0.0.1 localhost\n{address} {MANAGER_HOST}\n"),
        )
        .expect("the namespace's hosts file");
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd.kill_on_drop(true);
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.link]);
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.name));
    }
}

/// How the proxy is set up.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// `user:password` it demands (407 without).
    pub basic_auth: Option<(String, String)>,
    /// Ports it allows `CONNECT` to (all when empty; others get 403).
    pub connect_ports: Vec<u16>,
    /// Seconds after which it drops a quiet connection (tinyproxy's `Timeout`).
    pub idle_timeout: Option<u32>,
}

/// A real tinyproxy inside a [`Cluster`], listening on its address there.
pub struct Tinyproxy {
    /// `http://ADDRESS:PORT`, what clients put in HTTPS_PROXY.
    pub url: String,
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Tinyproxy {
    /// Starts tinyproxy in `cluster` with `options`, and waits until it listens.
    pub async fn start(cluster: &Cluster, options: &ProxyOptions) -> Tinyproxy {
        let dir = tempfile::tempdir().expect("tempdir");
        Tinyproxy::start_in(cluster, options, dir, free_port()).await
    }

    async fn start_in(
        cluster: &Cluster,
        options: &ProxyOptions,
        dir: tempfile::TempDir,
        port: u16,
    ) -> Tinyproxy {
        let log = dir.path().join("tinyproxy.log");
        let mut conf = format!(
            "Port {port}\nListen {}\nTimeout {}\nLogFile \"{}\"\nLogLevel Info\n\
             MaxClients 200\nDisableViaHeader Yes\n",
            cluster.inside_ip,
            options.idle_timeout.unwrap_or(600),
            log.display()
        );
        if let Some((user, password)) = &options.basic_auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        for p in &options.connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        let path = dir.path().join("tinyproxy.conf");
        std::fs::write(&path, conf).expect("tinyproxy.conf");
        let child = cluster
            .command("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tinyproxy (apt-get install tinyproxy)");
        let proxy = Tinyproxy {
            url: format!("http://{}:{port}", cluster.inside_ip),
            port,
            dir,
            child,
        };
        let address = (cluster.inside_ip, port);
        wait_until_listening(address, Duration::from_secs(10), "tinyproxy").await;
        proxy
    }

    /// The requests it logged so far: `CONNECT host:port` and `GET http://...` lines.
    pub fn requests(&self) -> Vec<String> {
        let log =
            std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.split_once("]: Request (file descriptor ").map(|(_, r)| r))
            .filter_map(|r| r.split_once("): ").map(|(_, req)| req.trim().to_owned()))
            .collect()
    }

    /// Stops it and starts it again on the same address and port (a proxy restart):
    /// every connection through it ends.
    pub async fn restart(self, cluster: &Cluster, options: &ProxyOptions) -> Tinyproxy {
        let Tinyproxy {
            dir,
            mut child,
            port,
            ..
        } = self;
        let _ = child.kill().await;
        Tinyproxy::start_in(cluster, options, dir, port).await
    }
}

/// Forwards every TCP connection made to `listen` (port 0: a free one) to `to`, for as
/// long as the runtime lives: a server on this machine's loopback made reachable from the
/// cluster's side of the link. Returns the address it listens on.
pub async fn forward(
    listen: std::net::SocketAddr,
    to: std::net::SocketAddr,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    let bound = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                }
            });
        }
    });
    bound
}

//! Behind a company proxy: the listing and a tunnel through a real tinyproxy that alone
//! can resolve the server's name (see `porthole_e2e::network`), against every target,
//! the real managers and web servers included. Needs root (a network namespace).

use super::*;
use porthole_e2e::network::{forward, Cluster, ProxyOptions, Tinyproxy, MANAGER_HOST};

/// `porthole sessions` and `porthole open rig-running echo` through the proxy; its log
/// shows the requests (`GET http://...`) and the tunnels (`CONNECT`).
pub fn through_a_proxy(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let Some(cluster) = Cluster::create() else {
            obs.add("through a proxy", "skipped (needs root)");
            return obs;
        };
        let server: std::net::SocketAddr = t
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the target's endpoint is http://ADDRESS:PORT");
        let front = forward((cluster.host_ip, 0).into(), server).await;
        let proxy = Tinyproxy::start(&cluster, &ProxyOptions::default()).await;
        let endpoint = format!("http://{MANAGER_HOST}:{}", front.port());
        let through = |args: &[&str]| {
            let mut cmd = t.porthole(args);
            cmd.env("BACKEND_ENDPOINT", &endpoint)
                .env("HTTP_PROXY", &proxy.url);
            cmd
        };

        let out = run_with_timeout(through(&["sessions", "--json"]), 60).await;
        assert_ok(t, &out, "porthole sessions through the proxy");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("rig-running"),
            "{}: {out:?}",
            t.label()
        );
        let open = Open::spawn(through(&[
            "open",
            "rig-running",
            "echo",
            "--json",
            "--no-launch",
        ]))
        .await;
        echo_through(open.port(), 100_000).await;
        open.stop().await;

        let authority = format!("{MANAGER_HOST}:{}", front.port());
        let seen = proxy.requests();
        let gets = seen
            .iter()
            .filter(|r| r.starts_with(&format!("GET http://{authority}/")))
            .count();
        let posts = seen
            .iter()
            .filter(|r| r.starts_with(&format!("POST http://{authority}/")))
            .count();
        let connects = seen
            .iter()
            .filter(|r| r.starts_with(&format!("CONNECT {authority} ")))
            .count();
        assert!(gets >= 1 && posts >= 1, "{}: requests {seen:?}", t.label());
        assert!(connects >= 2, "{}: tunnels {seen:?}", t.label());
        obs.add(
            "porthole sessions through tinyproxy",
            "rig-running listed; the proxy logged the GET and POST requests",
        );
        obs.add(
            "porthole open rig-running echo through tinyproxy",
            "100 kB echoed; the proxy logged the CONNECTs",
        );
        obs
    })
}

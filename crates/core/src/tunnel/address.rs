//! Where a browser reaches a tunnel: the tunnel's own loopback host name and the URL to
//! open.
//!
//! Browsers keep cookies per host name, not per port, so apps on `127.0.0.1:A` and
//! `127.0.0.1:B` see, and can overwrite, each other's cookies: two sessions' JupyterLabs
//! share one `_xsrf` cookie (JupyterLab 4 keeps working only because it puts the port in
//! its login cookie's name and checks `_xsrf` by double submit), and an app with a fixed
//! session cookie name logs the other out. Each web tunnel therefore gets its own name,
//! `<app>-<session>.localhost`, which browsers (and curl) resolve to the loopback address
//! without any DNS (RFC 6761), and which the Host guard checks.

use std::net::SocketAddr;

use crate::api::ServicePort;

/// The suffix every tunnel name ends with.
pub const LOCALHOST_SUFFIX: &str = ".localhost";

/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// The tunnel's own host name: `<app>-<session>.localhost`, lowercased, with every
/// character that a DNS label cannot hold replaced by `-`.
///
/// ```
/// use porthole_core::tunnel::local_host_name;
/// assert_eq!(local_host_name("eval-7", "jupyterlab"), "jupyterlab-eval-7.localhost");
/// assert_eq!(local_host_name("My_Run.2", "tensorboard"), "tensorboard-my-run-2.localhost");
/// ```
pub fn local_host_name(session: &str, app: &str) -> String {
    let mut label = String::with_capacity(app.len() + session.len() + 1);
    for c in app.chars().chain(['-']).chain(session.chars()) {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        // One dash for a run of odd characters keeps names readable.
        if !(c == '-' && label.ends_with('-')) {
            label.push(c);
        }
    }
    let mut label = label.trim_matches('-').to_owned();
    label.truncate(MAX_LABEL);
    let label = label.trim_end_matches('-');
    if label.is_empty() {
        format!("app{LOCALHOST_SUFFIX}")
    } else {
        format!("{label}{LOCALHOST_SUFFIX}")
    }
}

/// Where a known app starts when its image gives no `url_template` (what the Backend.AI
/// WebUI opens for it).
fn start_path(app: &str) -> &'static str {
    match app {
        "jupyterlab" => "/lab",
        "vscode" => "/?folder=/home/work",
        _ => "/",
    }
}

/// The URL a browser opens for web app `app` whose tunnel listens on `local` and is
/// named `host` (see [`local_host_name`]). The image's `url_template`
/// (`{protocol}://{host}:{port}/path`) wins over the built-in start paths; a template
/// without `{port}` cannot point at a local tunnel and is ignored.
pub fn app_url(app: &ServicePort, host: &str, local: SocketAddr) -> String {
    let port = local.port().to_string();
    match &app.url_template {
        Some(template) if template.contains("{port}") => template
            .replace("{protocol}", "http")
            .replace("{host}", host)
            .replace("{port}", &port),
        _ => format!("http://{host}:{port}{}", start_path(&app.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AppProtocol;

    fn app(name: &str, template: Option<&str>) -> ServicePort {
        ServicePort {
            name: name.into(),
            protocol: AppProtocol::Http,
            container_ports: vec![8080],
            url_template: template.map(str::to_owned),
            is_inference: false,
            allowed_arguments: Vec::new(),
            allowed_envs: Vec::new(),
        }
    }

    #[test]
    fn names_are_valid_dns_labels() {
        assert_eq!(
            local_host_name("train-1", "jupyter"),
            "jupyter-train-1.localhost"
        );
        assert_eq!(local_host_name("Ünï  cødé", "app"), "app-n-c-d.localhost");
        assert_eq!(local_host_name("--", "--"), "app.localhost");
        let long = local_host_name(&"s".repeat(100), "jupyterlab");
        let label = long.trim_end_matches(LOCALHOST_SUFFIX);
        assert_eq!(label.len(), MAX_LABEL);
        assert!(label.starts_with("jupyterlab-s"));
        // A truncation that ends on a dash drops it.
        let dashed = local_host_name(&format!("{}-x", "a".repeat(52)), "jupyterlab");
        assert!(!dashed.trim_end_matches(LOCALHOST_SUFFIX).ends_with('-'));
    }

    #[test]
    fn urls_follow_templates_and_start_paths() {
        let local: SocketAddr = "127.0.0.1:8890".parse().unwrap();
        let host = "jupyterlab-s.localhost";
        assert_eq!(
            app_url(&app("jupyterlab", None), host, local),
            "http://jupyterlab-s.localhost:8890/lab"
        );
        assert_eq!(
            app_url(&app("tensorboard", None), host, local),
            "http://jupyterlab-s.localhost:8890/"
        );
        assert_eq!(
            app_url(
                &app("custom", Some("{protocol}://{host}:{port}/start?x=1")),
                "custom-s.localhost",
                local
            ),
            "http://custom-s.localhost:8890/start?x=1"
        );
        assert_eq!(
            app_url(&app("custom", Some("http://elsewhere/")), host, local),
            "http://jupyterlab-s.localhost:8890/"
        );
    }
}

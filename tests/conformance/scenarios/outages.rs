//! The manager behind the web server down, and back.

use super::*;

/// The manager is down: `cannot reach` in API mode; 502 from the web server in session mode
/// (for /func, tunnels and even /server/login).
pub fn manager_down(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let raw = t.raw().await;
        t.manager_down().await;
        let result = std::panic::AssertUnwindSafe(async {
            let out = t.run(&["sessions"], 60).await;
            if t.session_mode() {
                obs.add(
                    "porthole sessions",
                    one_line_error(
                        t,
                        &out,
                        "answered 502 (The proxy target server is inaccessible.)",
                    ),
                );
                let q =
                    json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
                let r = raw.request("POST", "/admin/gql", Some(&q)).await;
                obs.add("/func/admin/gql", r.problem());
                let r = raw.request("GET", "/", None).await;
                obs.add("GET /func/", r.problem());
                let h = raw
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add("tunnel", describe_refusal(&h, "rig-running", "echo"));
                let r = Raw::login(&t.endpoint, &rig().username, &rig().password).await;
                obs.add("POST /server/login", r.problem());
                let Auth::Session { id, .. } = &raw.auth else {
                    unreachable!()
                };
                let r = reqwest::Client::new()
                    .post(format!("{}/server/login-check", t.endpoint))
                    .header("X-BackendAI-SessionID", id)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or_default();
                obs.add(
                    "POST /server/login-check",
                    format!("{status} authenticated={}", v["authenticated"]),
                );
            } else {
                obs.add(
                    "porthole sessions",
                    one_line_error(t, &out, "cannot reach ENDPOINT"),
                );
            }
        })
        .catch_unwind()
        .await;
        t.manager_up().await;
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
        if t.session_mode() {
            let out = t.run(&["sessions"], 60).await;
            assert_ok(t, &out, "porthole sessions once the manager is back");
            obs.add("porthole sessions once the manager is back", "works");
        }
        obs
    })
}

//! Signing in: credentials, an expired password, a skewed clock, too many failed logins.

use super::*;

/// An account whose password has expired: the web server refuses its login with
/// `password-expired` (200 up to 26.2, 401 from 26.4), and Porthole says so.
pub fn expired_password(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let user = rig().expired_username.clone();
        // Each refusal counts towards the web server's lock-out.
        let _reset = t.is_real().then(|| rig::LoginCounterReset(user.clone()));
        let r = Raw::login(&t.endpoint, &user, &rig().expired_password).await;
        let v = r.json();
        assert_eq!(v["authenticated"], false, "{}", t.label());
        assert!(
            v["data"]["type"]
                .as_str()
                .is_some_and(|k| k.ends_with("/password-expired")),
            "{}: {v}",
            t.label()
        );
        obs.add(
            "POST /server/login, expired password",
            format!("{} {v}", r.status),
        );
        let mut cmd = t.porthole(&["sessions"]);
        cmd.env("BACKEND_USERNAME", &user)
            .env("BACKEND_PASSWORD", &rig().expired_password);
        let out = run_with_timeout(cmd, 60).await;
        obs.add(
            "porthole sessions as that user",
            one_line_error(
                t,
                &out,
                "the password of this account has expired (Password expired on",
            ),
        );
        obs
    })
}

/// Wrong credentials: wrong secret (401) and friends in API mode; wrong password (200 with
/// `authenticated: false`) and friends in session mode.
pub fn credentials(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        if !t.session_mode() {
            let mut cmd = t.porthole(&["sessions"]);
            cmd.env(
                "BACKEND_SECRET_KEY",
                "wrong-secret-wrong-secret-wrong-secret00",
            );
            let out = run_with_timeout(cmd, 60).await;
            let mismatch = if t.speaks("v9.20250722") {
                "refused the credentials (401: HMAC signature mismatch)"
            } else {
                "refused the credentials (401: Signature mismatch)"
            };
            obs.add(
                "porthole sessions, wrong secret",
                one_line_error(t, &out, mismatch),
            );
            let mut cmd = t.porthole(&["sessions"]);
            cmd.env("BACKEND_ACCESS_KEY", "AKIANOSUCHKEY0000000");
            let out = run_with_timeout(cmd, 60).await;
            obs.add(
                "porthole sessions, unknown access key",
                one_line_error(
                    t,
                    &out,
                    "refused the credentials (401: Access key not found",
                ),
            );
            let q = json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
            let cases: [(&str, Auth); 3] = [
                (
                    "wrong secret",
                    Auth::Keypair {
                        access_key: rig().access_key.clone(),
                        secret_key: "wrong".into(),
                        skew: chrono::Duration::zero(),
                    },
                ),
                (
                    "unknown key",
                    Auth::Keypair {
                        access_key: "AKIANOSUCHKEY0000000".into(),
                        secret_key: "wrong".into(),
                        skew: chrono::Duration::zero(),
                    },
                ),
                ("no Authorization", Auth::None),
            ];
            for (what, auth) in cases {
                let r = t
                    .raw_with(auth.clone())
                    .request("POST", "/admin/gql", Some(&q))
                    .await;
                obs.add(
                    format!("gql, {what}"),
                    format!("{} => porthole: {}", r.problem(), mapped(&r, "", "")),
                );
                let h = t
                    .raw_with(auth)
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add(format!("tunnel, {what}"), h.describe());
            }
            // A version newer than the server's.
            let mut newer = t.raw().await;
            newer.api_version = newer_version(t);
            let r = newer.request("POST", "/admin/gql", Some(&q)).await;
            obs.add("gql, a newer X-BackendAI-Version", r.problem());
        } else {
            let mut cmd = t.porthole(&["sessions"]);
            cmd.env("BACKEND_PASSWORD", "wrong-password");
            let out = run_with_timeout(cmd, 60).await;
            obs.add(
                "porthole sessions, wrong password",
                one_line_error(t, &out, "sign-in failed: User credential mismatch. Check"),
            );
            for (what, user, pass) in [
                ("wrong password", rig().username.as_str(), "wrong-password"),
                ("unknown user", "nobody-conformance@example.test", "x"),
            ] {
                let r = Raw::login(&t.endpoint, user, pass).await;
                let v = r.json();
                // 200 with the flag up to 26.2; the manager's status from 26.4.
                let status = if t.speaks("v9.20250722") { 401 } else { 200 };
                assert_eq!(r.status, status, "{}: {what}", t.label());
                assert_eq!(v["authenticated"], false);
                obs.add(
                    format!("POST /server/login, {what}"),
                    format!(
                        "{} {} session-id-header={}",
                        r.status,
                        v,
                        r.session_header.as_ref().is_some_and(|s| s.len() == 32)
                    ),
                );
            }
            let r = Raw::login(&t.endpoint, &rig().username, "").await;
            obs.add("POST /server/login, empty password", r.problem());
            // Requests with no, an unknown, or a logged-out session.
            let q = json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
            let good = t.raw().await;
            let Auth::Session { id, .. } = good.auth.clone() else {
                unreachable!()
            };
            for (what, auth) in [
                ("no session", Auth::None),
                (
                    "unknown session id",
                    Auth::Session {
                        id: "0123456789abcdef0123456789abcdef".into(),
                        via: Via::Header,
                    },
                ),
                (
                    "session id as cookie only",
                    Auth::Session {
                        id: id.clone(),
                        via: Via::Cookie,
                    },
                ),
            ] {
                let raw = t.raw_with(auth);
                let r = raw.request("POST", "/admin/gql", Some(&q)).await;
                let seen = if r.status == 200 {
                    "200".to_owned()
                } else {
                    format!("{} => porthole: {}", r.problem(), mapped(&r, "", ""))
                };
                obs.add(format!("/func/admin/gql, {what}"), seen);
                let h = raw
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add(format!("tunnel, {what}"), h.describe());
            }
            // The header wins over the cookie, even when it is wrong.
            let r = reqwest::Client::new()
                .post(format!("{}/func/admin/gql", t.endpoint))
                .header("X-BackendAI-SessionID", "0123456789abcdef0123456789abcdef")
                .header("Cookie", format!("AIOHTTP_SESSION={id}"))
                .json(&q)
                .send()
                .await
                .unwrap();
            obs.add(
                "/func/admin/gql, wrong header + right cookie",
                r.status().as_u16().to_string(),
            );
            // A version newer than the manager's: its 400 passes through.
            let mut newer = good.clone();
            newer.api_version = newer_version(t);
            let r = newer.request("POST", "/admin/gql", Some(&q)).await;
            obs.add("/func/admin/gql, a newer X-BackendAI-Version", r.problem());
            // Logging in again with a logged-in session: 400.
            let r = reqwest::Client::new()
                .post(format!("{}/server/login", t.endpoint))
                .header("X-BackendAI-SessionID", &id)
                .json(&json!({"username": rig().username, "password": rig().password}))
                .send()
                .await
                .unwrap();
            obs.add(
                "POST /server/login while logged in",
                r.status().as_u16().to_string(),
            );
            let r = reqwest::Client::new()
                .post(format!("{}/server/logout", t.endpoint))
                .header("X-BackendAI-SessionID", &id)
                .send()
                .await
                .unwrap();
            obs.add("POST /server/logout", r.status().as_u16().to_string());
            let r = good.request("POST", "/admin/gql", Some(&q)).await;
            obs.add("/func/admin/gql after logout", r.problem());
        }
        obs
    })
}

/// A skewed clock: 400 "Date/time sync error" beyond ±15 min in API mode, and Porthole's
/// message under `faketime`; in session mode the web server signs, so a skewed client works.
pub fn skewed_clock(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let mut cmd = Command::new("faketime");
        cmd.args(["-f", "-20m"])
            .arg(bin("porthole"))
            .arg("sessions")
            .env_remove("BROWSER")
            .envs(t.env())
            .stdin(Stdio::null());
        let out = run_with_timeout(cmd, 60).await;
        if t.session_mode() {
            assert_ok(t, &out, "faketime -20m porthole sessions (session mode)");
            obs.add(
                "faketime -20m porthole sessions",
                "works (the web server signs)",
            );
        } else {
            obs.add(
                "faketime -20m porthole sessions",
                one_line_error(t, &out, "clock skew over 15 minutes"),
            );
            let q = json!({"query": "{ compute_session_list(limit:1, offset:0){ total_count } }"});
            for minutes in [-16i64, -14, 14, 16] {
                let raw = t.raw_with(Auth::Keypair {
                    access_key: rig().access_key.clone(),
                    secret_key: rig().secret_key.clone(),
                    skew: chrono::Duration::minutes(minutes),
                });
                let r = raw.request("POST", "/admin/gql", Some(&q)).await;
                let seen = if r.status == 200 {
                    "200".to_owned()
                } else {
                    format!("{} => porthole: {}", r.problem(), mapped(&r, "", ""))
                };
                obs.add(format!("gql, clock {minutes:+} min"), seen);
                let h = raw
                    .ws(&tunnel_path("rig-running", "tcpproxy", "app=echo"))
                    .await;
                obs.add(format!("tunnel, clock {minutes:+} min"), h.describe());
            }
        }
        obs
    })
}

/// Ten failed logins lock a username (429) for 20 minutes, even with the right password.
pub fn too_many_logins(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        // A username nobody uses, so the real web server's lock hurts no one.
        let user = format!(
            "locked-{}-{}@example.test",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        );
        let _reset = t.is_real().then(|| rig::LoginCounterReset(user.clone()));
        let mut seen = Vec::new();
        for _ in 0..10 {
            let r = Raw::login(&t.endpoint, &user, "wrong").await;
            seen.push(format!("{}:{}", r.status, r.json()["authenticated"]));
        }
        obs.add("10 failed logins of a new user", seen.join(" "));
        let r = Raw::login(&t.endpoint, &user, "wrong").await;
        obs.add("11th login", r.problem());
        let mut cmd = t.porthole(&["sessions"]);
        cmd.env("BACKEND_USERNAME", &user);
        let out = run_with_timeout(cmd, 60).await;
        obs.add(
            "porthole sessions as that user",
            one_line_error(t, &out, "too many failed sign-in attempts (429)"),
        );

        // The rig user: locked even with the right password, until the counter is reset
        // (start.sh does that; the guard below does it even if this test fails).
        let reset = t
            .is_real()
            .then(|| rig::LoginCounterReset(rig().username.clone()));
        for _ in 0..10 {
            Raw::login(&t.endpoint, &rig().username, "wrong").await;
        }
        let r = Raw::login(&t.endpoint, &rig().username, &rig().password).await;
        obs.add("rig user, right password after 10 failures", r.problem());
        let out = t.run(&["sessions"], 60).await;
        obs.add(
            "porthole sessions, rig user locked",
            one_line_error(t, &out, "too many failed sign-in attempts (429)"),
        );
        drop(reset);
        if t.is_real() {
            let out = t.run(&["sessions"], 60).await;
            assert_ok(t, &out, "porthole sessions after the counter reset");
        }
        obs
    })
}

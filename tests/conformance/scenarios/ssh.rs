//! SSH: the session key downloaded, `porthole ssh`, `ssh-config` and ProxyCommand.

use super::*;

/// `porthole ssh` with the key fetched by download_single; the raw download rules.
pub fn ssh(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let user = t.backends.ssh_user.clone();
        let expected_key = std::fs::read(&t.backends.key).unwrap();
        for session in ["rig-running", rig().running_id.as_str()] {
            let tmp = tempfile::tempdir().unwrap();
            let mut cmd = t.porthole(&["ssh", "--user", &user, session, "--", "echo", "ok"]);
            cmd.env("TMPDIR", tmp.path());
            let out = run_with_timeout(cmd, 90).await;
            assert_ok(t, &out, "porthole ssh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
            assert_eq!(
                std::fs::read_dir(tmp.path()).unwrap().count(),
                0,
                "{}: the key is removed",
                t.label()
            );
            obs.add(
                format!("porthole ssh {session} -- echo ok"),
                "ok, exit 0, key removed",
            );
        }
        let out = t
            .run(
                &["ssh", "--user", &user, "rig-running", "--", "exit", "7"],
                90,
            )
            .await;
        assert_eq!(out.status.code(), Some(7), "{}: {out:?}", t.label());
        obs.add("porthole ssh rig-running -- exit 7", "exit 7");

        // ssh through `porthole proxy` as its ProxyCommand.
        let mut ssh = Command::new("ssh");
        ssh.args(["-i"])
            .arg(&t.backends.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
            ])
            .arg(format!(
                "ProxyCommand={} proxy rig-running sshd",
                bin("porthole").display()
            ))
            .arg(format!("{user}@rig-running"))
            .arg("echo proxied")
            .env_remove("BACKEND_ENDPOINT")
            .envs(t.env())
            .stdin(Stdio::null());
        let out = run_with_timeout(ssh, 90).await;
        assert_ok(t, &out, "ssh -o ProxyCommand='porthole proxy ...'");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "proxied\n");
        obs.add("ssh via ProxyCommand porthole proxy", "proxied");

        // `porthole open ... sshd` downloads the key for the printed ssh command.
        let open = t.open("rig-running", "sshd", &[]).await;
        let key_file = open.ready["key_file"]
            .as_str()
            .expect("key_file")
            .to_owned();
        assert_eq!(
            std::fs::read(&key_file).unwrap(),
            expected_key,
            "{}",
            t.label()
        );
        obs.add(
            "porthole open rig-running sshd: key_file",
            "the session's id_container",
        );
        open.stop().await;
        assert!(!std::path::Path::new(&key_file).exists());

        // download_single as each release serves it: GET up to 24.03, POST from 24.09 (26.x
        // reads `file` from the query alone). Porthole sends the query form, by the method
        // the version calls for.
        let raw = t.raw().await;
        let method = if t.speaks("v8.20240915") {
            "POST"
        } else {
            "GET"
        };
        let id_container = json!({"file": "id_container"});
        for (m, query, body) in [
            ("GET", "?file=id_container", None),
            ("POST", "?file=id_container", None),
            ("POST", "", Some(&id_container)),
        ] {
            let r = raw
                .request(
                    m,
                    &format!("/session/rig-running/download_single{query}"),
                    body,
                )
                .await;
            let with = if body.is_some() {
                " with a JSON body"
            } else {
                ""
            };
            let seen = if r.status == 200 {
                let what = if r.body == expected_key {
                    "the key"
                } else {
                    "other bytes"
                };
                format!("200 {} ({} bytes, {what})", r.content_type, r.body.len())
            } else {
                r.problem()
            };
            if m == method && body.is_none() {
                assert_eq!(
                    r.body,
                    expected_key,
                    "{}: {m} download_single: {seen}",
                    t.label()
                );
            }
            obs.add(format!("{m} download_single{query}{with}"), seen);
        }
        let r = raw
            .request(
                method,
                &format!(
                    "/session/{}/download_single?file=id_container",
                    rig().running_id
                ),
                None,
            )
            .await;
        obs.add(
            format!("{method} download_single by UUID"),
            format!("{}", r.status),
        );
        let r = raw
            .request(
                method,
                "/session/rig-running/download_single?file=nope.txt",
                None,
            )
            .await;
        obs.add(
            format!("{method} download_single?file=nope.txt"),
            r.problem(),
        );
        obs
    })
}

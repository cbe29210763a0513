//! Listing sessions and their apps.

use super::*;

/// Listing: RUNNING and PENDING sessions, `service_ports` a JSON string / null while
/// PENDING, the status filter, and `/apps`.
pub fn listing(t: &Target) -> BoxFuture<'_, Obs> {
    Box::pin(async move {
        let mut obs = Obs::default();
        let out = t.run(&["sessions", "--json"], 60).await;
        assert_ok(t, &out, "porthole sessions --json");
        let list: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
        let mut items = list.as_array().expect("array").clone();
        items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let names: Vec<&str> = items.iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, ["rig-pending", "rig-running"], "{}", t.label());
        for s in &items {
            let mut s = s.clone();
            // Differs between any two servers; everything else must match.
            s.as_object_mut().unwrap().remove("created_at");
            obs.add(
                format!("porthole sessions --json: {}", s["name"]),
                s.to_string(),
            );
        }
        let running = &items[1];
        assert_eq!(running["id"], rig().running_id.as_str());
        assert_eq!(running["status"], "RUNNING");
        let apps: Vec<&str> = running["service_ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let want: Vec<&str> = rig().apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(apps, want, "{}", t.label());
        assert_eq!(items[0]["status"], "PENDING");
        assert_eq!(items[0]["service_ports"], json!([]), "{}", t.label());

        let table = t.run(&["sessions"], 60).await;
        assert_ok(t, &table, "porthole sessions");
        let text = String::from_utf8_lossy(&table.stdout);
        assert!(
            text.contains("rig-running") && text.contains("rig-pending"),
            "{text}"
        );
        for line in text.lines() {
            obs.add(
                format!(
                    "porthole sessions: line {}",
                    line.split_whitespace().next().unwrap_or("")
                ),
                line.split_whitespace().collect::<Vec<_>>().join(" "),
            );
        }

        let raw = t.raw().await;
        for status in [
            Value::Null,
            json!("RUNNING"),
            json!("PENDING"),
            json!("RUNNING,PENDING"),
            json!("TERMINATED"),
            json!("BOGUS"),
        ] {
            let body = json!({"query": SESSION_QUERY, "variables": {"limit": 50, "offset": 0, "status": status}});
            let r = raw.request("POST", "/admin/gql", Some(&body)).await;
            let v = r.json();
            let list = &v["data"]["compute_session_list"];
            let mut seen = format!("{}", r.status);
            if list.is_null() {
                seen.push_str(&format!(" list=null errors={}", v["errors"]));
            } else {
                let mut items = list["items"].as_array().cloned().unwrap_or_default();
                items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                for item in &items {
                    // service_ports is a GraphQL JSONString: a string holding JSON, or null.
                    seen.push_str(&format!(" | {}", item));
                    if item["name"] == "rig-running" {
                        let ports: Value = serde_json::from_str(
                            item["service_ports"]
                                .as_str()
                                .expect("service_ports is a string"),
                        )
                        .expect("service_ports holds JSON");
                        assert_eq!(ports.as_array().map(Vec::len), Some(rig().apps.len()));
                    } else {
                        assert!(item["service_ports"].is_null(), "PENDING: null ports");
                    }
                }
                seen.push_str(&format!(" | total_count={}", list["total_count"]));
            }
            obs.add(format!("gql status={status}"), seen);
        }
        for session in ["rig-running", &rig().running_id, "rig-pending", "nope"] {
            let r = raw
                .request("GET", &format!("/stream/session/{session}/apps"), None)
                .await;
            let seen = if r.status == 200 {
                format!("200 {}", r.json())
            } else {
                r.problem()
            };
            obs.add(format!("GET /stream/session/{session}/apps"), seen);
        }
        obs
    })
}

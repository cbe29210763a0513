//! Real apps through `porthole open`, used the way a person does, in headless Chromium:
//! two sessions' JupyterLabs side by side in one browser profile (each on its own
//! `*.localhost` name, so their XSRF cookies stay apart), a notebook run, saved and
//! reloaded through each; and TensorBoard showing a scalar. The apps run as Backend.AI's
//! images start them (no token, XSRF on), behind the emulator.

use porthole_e2e::apps::{browser_check, WebApp};
use porthole_e2e::*;

fn session(name: &str, services: Vec<Service>) -> Session {
    Session {
        name: name.into(),
        status: "RUNNING".into(),
        services,
        ssh_key: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_jupyterlabs_side_by_side_run_save_and_reload_a_notebook() {
    let (lab1, lab2) = tokio::join!(WebApp::jupyterlab(), WebApp::jupyterlab());
    let sessions = vec![
        session(
            "train-1",
            vec![Service::new("jupyterlab", "http", &lab1.target())],
        ),
        session(
            "eval-7",
            vec![Service::new("jupyterlab", "http", &lab2.target())],
        ),
    ];
    let emu = Emulator::start(Mode::ApiV8, &emulator_config(Mode::ApiV8, &sessions, "")).await;
    let (t1, t2) = tokio::join!(
        emu.open("train-1", "jupyterlab", &[]),
        emu.open("eval-7", "jupyterlab", &[])
    );
    let url1 = t1.ready["url"].as_str().unwrap().to_owned();
    let url2 = t2.ready["url"].as_str().unwrap().to_owned();
    assert_eq!(
        url1,
        format!("http://jupyterlab-train-1.localhost:{}/lab", t1.port())
    );
    assert_eq!(
        url2,
        format!("http://jupyterlab-eval-7.localhost:{}/lab", t2.port())
    );

    let result = browser_check("jupyter.mjs", &[&url1, &url2], 240).await;
    assert_eq!(result["ok"], true, "{result}");
    let runs = result["results"].as_array().expect("one result per URL");
    assert_eq!(runs.len(), 2, "{result}");
    for run in runs {
        assert_eq!(run["output"], "42", "{run}");
        assert_eq!(run["afterReload"], "42", "{run}");
    }
    // Each notebook was saved by its own server, in its own session's files.
    for lab in [&lab1, &lab2] {
        let saved: Vec<_> = std::fs::read_dir(lab.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "ipynb"))
            .collect();
        assert_eq!(
            saved.len(),
            1,
            "one notebook in {}",
            lab.dir.path().display()
        );
        let text = std::fs::read_to_string(saved[0].path()).unwrap();
        assert!(text.contains("print(6*7)") && text.contains("42"), "{text}");
    }
    t1.stop().await;
    t2.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tensorboard_shows_its_scalars() {
    let board = WebApp::tensorboard("porthole/loss").await;
    let sessions = vec![session(
        "train-1",
        vec![Service::new("tensorboard", "http", &board.target())],
    )];
    let emu = Emulator::start(Mode::ApiV8, &emulator_config(Mode::ApiV8, &sessions, "")).await;
    let tunnel = emu.open("train-1", "tensorboard", &[]).await;
    let url = tunnel.ready["url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        format!("http://tensorboard-train-1.localhost:{}/", tunnel.port())
    );
    let result = browser_check("tensorboard.mjs", &[&url, "porthole/loss"], 180).await;
    assert_eq!(result["ok"], true, "{result}");
    tunnel.stop().await;
}

//! The built-in demo (feature `demo`): the emulator started in-process on a free loopback
//! port with local demo services, signed in to with its public demo keys.

use porthole_core::api::{BackendClient, ComputeSession, Credentials, Endpoint};
pub(crate) use porthole_emulator::demo::Demo;
use porthole_emulator::demo::{start_demo, DEMO_ACCESS_KEY, DEMO_SECRET_KEY};

use crate::error::UiError;
use crate::loopback;

/// Starts the demo once (kept in `running`), then signs in to it.
pub(crate) async fn connect(
    running: &tokio::sync::Mutex<Option<Demo>>,
) -> Result<(BackendClient, Vec<ComputeSession>), UiError> {
    let mut demo = running.lock().await;
    if demo.is_none() {
        let started = start_demo(loopback(0))
            .await
            .map_err(|e| UiError::new("demo", format!("the demo could not start: {e}")))?;
        tracing::info!(endpoint = %started.endpoint_url(), "demo started");
        *demo = Some(started);
    }
    let url = demo
        .as_ref()
        .map(Demo::endpoint_url)
        .ok_or_else(|| UiError::new("demo", "the demo is not running"))?;
    drop(demo);
    let endpoint = Endpoint::parse(&url)?;
    let credentials = Credentials::Keypair {
        access_key: DEMO_ACCESS_KEY.to_owned(),
        secret_key: DEMO_SECRET_KEY.to_owned(),
    };
    let client = BackendClient::connect(&endpoint, &credentials, &Default::default()).await?;
    let sessions = client.list_sessions(false).await?;
    Ok((client, sessions))
}
